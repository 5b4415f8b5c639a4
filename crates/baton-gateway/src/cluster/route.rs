//! One function's routing state at a gateway: its sandboxes with their in-flight counts,
//! the wait queue, and the load samples for the autoscaler.

use crate::balance::{LoadBalancer, Slot, stable_hash};
use baton_api::cluster as proto;
use baton_api::{FunctionSpec, SandboxId, WorkerId};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// A sandbox as the gateway reaches it.
pub(crate) struct Endpoint {
    pub(crate) sandbox: SandboxId,
    pub(crate) worker: WorkerId,
    /// [`stable_hash`] of the worker's id, as load balancing sees it.
    worker_hash: u64,
    /// `http://{worker data address}/sandbox/{id}`.
    pub(crate) base: String,
    in_flight: AtomicU32,
    /// Placed by a scale from zero this gateway asked for, and not yet announced as created:
    /// the worker is asked to hold a request until the sandbox exists.
    pub(crate) placed: AtomicBool,
}

impl Endpoint {
    fn new(e: &proto::Endpoint, placed: bool) -> Arc<Self> {
        Arc::new(Endpoint {
            sandbox: SandboxId::from(e.sandbox_id.as_str()),
            worker: WorkerId::from(e.worker_id.as_str()),
            worker_hash: stable_hash(e.worker_id.as_bytes()),
            base: format!("http://{}/sandbox/{}", e.address, e.sandbox_id),
            in_flight: AtomicU32::new(0),
            placed: AtomicBool::new(placed),
        })
    }

    /// Takes a slot if the sandbox has one free.
    fn try_acquire(&self, capacity: u32) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok()
    }
}

pub(crate) struct Route {
    pub(crate) spec: FunctionSpec,
    pub(crate) version: u64,
    endpoints: RwLock<Vec<Arc<Endpoint>>>,
    /// Woken when a slot frees or sandboxes arrive.
    pub(crate) changed: Notify,
    waiting: AtomicU32,
    in_flight: AtomicU32,
    /// (sum of samples, count) since the last report.
    samples: Mutex<(f64, u32)>,
    /// Requests given a slot since the last report.
    requests: std::sync::atomic::AtomicU64,
    /// A scale-from-zero request is out; cleared when sandboxes arrive.
    pub(crate) from_zero_requested: AtomicBool,
}

/// A slot in one sandbox, given back on drop.
pub(crate) struct SlotLease<'a> {
    route: &'a Route,
    pub(crate) endpoint: Arc<Endpoint>,
}

impl Drop for SlotLease<'_> {
    fn drop(&mut self) {
        self.route.release(&self.endpoint);
    }
}

/// A place in the wait queue, given back on drop.
pub(crate) struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Route {
    pub(crate) fn new(spec: FunctionSpec, version: u64) -> Self {
        Route {
            spec,
            version,
            endpoints: RwLock::default(),
            changed: Notify::new(),
            waiting: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            samples: Mutex::new((0.0, 0)),
            requests: std::sync::atomic::AtomicU64::new(0),
            from_zero_requested: AtomicBool::new(false),
        }
    }

    /// Picks a sandbox with room and takes a slot in it; the slot is given back when the
    /// returned lease drops, also when the request is abandoned mid-way (client gone).
    pub(crate) fn acquire(
        &self,
        balancer: &dyn LoadBalancer,
        key: Option<u64>,
    ) -> Option<SlotLease<'_>> {
        let capacity = self.spec.limits.concurrency;
        let endpoints = self.endpoints.read().unwrap();
        for _ in 0..4 {
            let slots: Vec<Slot> = endpoints
                .iter()
                .map(|e| Slot {
                    in_flight: e.in_flight.load(Ordering::Acquire),
                    capacity,
                    worker: e.worker_hash,
                })
                .collect();
            let i = balancer.pick(&slots, key)?;
            if endpoints[i].try_acquire(capacity) {
                self.in_flight.fetch_add(1, Ordering::AcqRel);
                self.requests.fetch_add(1, Ordering::Relaxed);
                return Some(SlotLease {
                    route: self,
                    endpoint: endpoints[i].clone(),
                });
            }
        }
        None
    }

    /// Gives a slot back and wakes one waiter.
    fn release(&self, endpoint: &Endpoint) {
        endpoint.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.changed.notify_one();
        }
    }

    /// A place in the queue, or `None` when it is full.
    pub(crate) fn wait_slot(&self) -> Option<Waiting<'_>> {
        let limit = self.spec.scaling.queue;
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Waiting(&self.waiting))
    }

    pub(crate) fn endpoint_count(&self) -> usize {
        self.endpoints.read().unwrap().len()
    }

    pub(crate) fn queued(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }

    pub(crate) fn set_endpoints(&self, endpoints: &[proto::Endpoint]) {
        let mut current = self.endpoints.write().unwrap();
        let kept: Vec<Arc<Endpoint>> = endpoints
            .iter()
            .map(
                |e| match current.iter().find(|c| c.sandbox.as_str() == e.sandbox_id) {
                    Some(known) => {
                        known.placed.store(false, Ordering::Release);
                        known.clone()
                    }
                    None => Endpoint::new(e, false),
                },
            )
            .collect();
        *current = kept;
        drop(current);
        self.woke_by_new_endpoints(!endpoints.is_empty());
    }

    pub(crate) fn update_endpoints(&self, added: &[proto::Endpoint], removed: &[String]) {
        self.add_endpoints(added, removed, false);
    }

    /// Adds sandboxes a scale from zero placed for this gateway before they exist.
    pub(crate) fn add_placed(&self, placed: &[proto::Endpoint]) {
        self.add_endpoints(placed, &[], true);
    }

    fn add_endpoints(&self, added: &[proto::Endpoint], removed: &[String], placed: bool) {
        let mut current = self.endpoints.write().unwrap();
        current.retain(|e| !removed.iter().any(|r| *r == e.sandbox.as_str()));
        for e in added {
            match current.iter().find(|c| c.sandbox.as_str() == e.sandbox_id) {
                // Announced as created (whichever of the two messages came first).
                Some(known) if !placed => known.placed.store(false, Ordering::Release),
                Some(_) => {}
                None => current.push(Endpoint::new(e, placed)),
            }
        }
        drop(current);
        self.woke_by_new_endpoints(!added.is_empty());
    }

    fn woke_by_new_endpoints(&self, any: bool) {
        if any {
            self.from_zero_requested.store(false, Ordering::Release);
            self.changed.notify_waiters();
        }
    }

    pub(crate) fn remove_endpoint(&self, sandbox: &SandboxId) {
        self.endpoints
            .write()
            .unwrap()
            .retain(|e| e.sandbox != *sandbox);
    }

    pub(crate) fn drop_worker(&self, worker: &WorkerId) {
        self.endpoints
            .write()
            .unwrap()
            .retain(|e| e.worker != *worker);
    }

    /// The function was removed or replaced: wake every waiter so it looks again.
    pub(crate) fn retire(&self) {
        self.changed.notify_waiters();
    }

    pub(crate) fn sample(&self) {
        let now = self.in_flight.load(Ordering::Acquire) + self.waiting.load(Ordering::Acquire);
        let mut samples = self.samples.lock().unwrap();
        samples.0 += f64::from(now);
        samples.1 += 1;
    }

    /// Mean concurrency since the last call, requests queued now, and requests given a slot
    /// since the last call.
    pub(crate) fn take_load(&self, expected_samples: u32) -> (f64, u32, u64) {
        let mut samples = self.samples.lock().unwrap();
        let mean = samples.0 / f64::from(samples.1.max(expected_samples).max(1));
        *samples = (0.0, 0);
        let requests = self.requests.swap(0, Ordering::Relaxed);
        (mean, self.queued(), requests)
    }
}
