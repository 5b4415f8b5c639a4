//! Which calls may take one of the node's wasm instances: a caller blocked on a callee holds
//! its instance, so if outside requests could take every instance, the calls they make would
//! find none and fail deep in the chain, each after work done for nothing. Outside requests
//! get half of the pool; calls made by functions (any depth) get all of it.

use std::sync::atomic::{AtomicU32, Ordering};

/// The node's instances in use, across functions, and who may take the next.
pub(crate) struct Admission {
    capacity: u32,
    in_use: AtomicU32,
}

/// One instance taken; given back on drop.
pub(crate) struct Held<'a>(&'a AtomicU32);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub(crate) fn new(capacity: u32) -> Self {
        Admission {
            capacity,
            in_use: AtomicU32::new(0),
        }
    }

    /// The most instances in use at which a call is still admitted: a request from outside
    /// (`nested` false) up to half the pool, rounded up, a call from a function up to all of
    /// it.
    pub(crate) fn limit(&self, nested: bool) -> u32 {
        if nested {
            self.capacity
        } else {
            self.capacity.div_ceil(2)
        }
    }

    /// Takes an instance if the call may have one; `None` when it must be refused.
    pub(crate) fn admit(&self, nested: bool) -> Option<Held<'_>> {
        let limit = self.limit(nested);
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Held(&self.in_use))
    }

    #[cfg(test)]
    fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_requests_get_half_the_pool_and_nested_calls_all_of_it() {
        for (capacity, outside, nested) in [(10, 5, 10), (1000, 500, 1000), (1, 1, 1), (3, 2, 3)] {
            let admission = Admission::new(capacity);
            let mut held = Vec::new();
            while let Some(h) = admission.admit(false) {
                held.push(h);
            }
            assert_eq!(held.len() as u32, outside, "outside, pool of {capacity}");
            while let Some(h) = admission.admit(true) {
                held.push(h);
            }
            assert_eq!(held.len() as u32, nested, "nested, pool of {capacity}");
            assert_eq!(admission.in_use(), nested);
            held.clear();
            assert_eq!(admission.in_use(), 0, "every instance given back");
            assert!(admission.admit(false).is_some());
        }
    }
}
