//! How a component's linear memories start: copied from its data segments at every
//! instantiation, or mapped copy-on-write from an image made once.
//!
//! Copying wins for small components (a Rust `hello` initialises kilobytes): no page faults,
//! no TLB shoot-downs when an instance's pages are reset (what a profile of the warm path
//! showed, see BENCHMARKS.md). Mapping wins for large ones: a componentize-py component
//! starts with an initialised heap of megabytes (an interpreter snapshot), and copying it
//! per request costs more than faulting in the pages a request touches. So the choice is per
//! component, by the bytes its data segments initialise.

/// When a component's memories are mapped copy-on-write rather than copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOnWrite {
    /// For components that initialise at least `threshold_bytes` of memory.
    Auto {
        /// The smallest initialised size that is mapped.
        threshold_bytes: u64,
    },
    /// Every component.
    Always,
    /// No component.
    Never,
}

/// Initialised bytes from which a component is mapped rather than copied: between the
/// largest Rust component measured (tens of KiB) and the smallest interpreter snapshot (the
/// StarlingMonkey engine of a jco component, megabytes); see BENCHMARKS.md, "Components from
/// other toolchains".
pub const DEFAULT_COW_THRESHOLD: u64 = 1 << 20;

impl Default for CopyOnWrite {
    fn default() -> Self {
        CopyOnWrite::Auto {
            threshold_bytes: DEFAULT_COW_THRESHOLD,
        }
    }
}

impl CopyOnWrite {
    /// Whether a component that initialises `initialised` bytes is mapped copy-on-write.
    pub fn maps(self, initialised: u64) -> bool {
        match self {
            CopyOnWrite::Auto { threshold_bytes } => initialised >= threshold_bytes,
            CopyOnWrite::Always => true,
            CopyOnWrite::Never => false,
        }
    }

    /// Whether some component may be copied, and whether some may be mapped: which engines
    /// the runtime needs.
    pub fn engines(self) -> (bool, bool) {
        match self {
            CopyOnWrite::Auto { .. } => (true, true),
            CopyOnWrite::Always => (false, true),
            CopyOnWrite::Never => (true, false),
        }
    }
}

/// Bytes the data segments of every core module in `component` initialise (a component that
/// does not parse counts 0: compiling it reports why).
pub fn initialised_bytes(component: &[u8]) -> u64 {
    let mut total = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let Ok(payload) = payload else { return total };
        if let wasmparser::Payload::DataSection(reader) = payload {
            for data in reader.into_iter().flatten() {
                total += data.data.len() as u64;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_maps_by_size() {
        let auto = CopyOnWrite::Auto {
            threshold_bytes: 1000,
        };
        for (policy, size, maps) in [
            (auto, 0, false),
            (auto, 999, false),
            (auto, 1000, true),
            (auto, 18 << 20, true),
            (CopyOnWrite::Always, 0, true),
            (CopyOnWrite::Never, 18 << 20, false),
        ] {
            assert_eq!(policy.maps(size), maps, "{policy:?} {size}");
        }
        assert_eq!(auto.engines(), (true, true));
        assert_eq!(CopyOnWrite::Never.engines(), (true, false));
        assert_eq!(CopyOnWrite::Always.engines(), (false, true));
    }

    #[test]
    fn counts_the_data_of_nested_modules() {
        assert_eq!(initialised_bytes(b"not wasm"), 0);
        let hello = initialised_bytes(baton_guests::HELLO);
        assert!(
            hello > 0 && hello < DEFAULT_COW_THRESHOLD,
            "hello initialises {hello} bytes"
        );
    }
}
