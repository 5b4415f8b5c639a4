//! The store's limits, with the peak of linear memory an instance reached: what the node's
//! memory prediction learns from (exact for wasm: every byte of linear memory is asked for
//! through the limiter, the initial size included).

use wasmtime::{ResourceLimiter, StoreLimits};

/// [`StoreLimits`] that remember the largest memory they allowed.
pub(crate) struct PeakLimits {
    inner: StoreLimits,
    peak: usize,
}

impl PeakLimits {
    pub(crate) fn new(inner: StoreLimits) -> Self {
        PeakLimits { inner, peak: 0 }
    }

    /// The largest linear memory the instance had, in bytes.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }
}

impl ResourceLimiter for PeakLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak = self.peak.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
