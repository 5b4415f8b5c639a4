use baton_api::{ApiError, ErrorKind, FunctionSpec, Replicas};
use baton_runtime::{FunctionLogs, Prepared, Sandbox};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The sandboxes of one function version and the requests waiting for them.
pub struct FunctionPool {
    spec: FunctionSpec,
    prepared: Arc<dyn Prepared>,
    logs: Arc<FunctionLogs>,
    state: Mutex<PoolState>,
    /// Woken when a slot frees or a sandbox becomes ready.
    changed: Notify,
    waiting: AtomicU32,
}

#[derive(Default)]
struct PoolState {
    slots: Vec<Slot>,
    starting: u32,
    next_id: u64,
    closed: bool,
}

struct Slot {
    id: u64,
    sandbox: Arc<dyn Sandbox>,
    in_flight: u32,
    last_used: Instant,
}

/// A slot in one sandbox, held for the length of one invocation; dropping it frees the slot.
pub struct Lease {
    pool: Arc<FunctionPool>,
    id: u64,
    /// The sandbox to invoke.
    pub sandbox: Arc<dyn Sandbox>,
    /// Time spent creating the sandbox, when this request had to.
    pub cold_start: Option<Duration>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap();
        if let Some(slot) = state.slots.iter_mut().find(|s| s.id == self.id) {
            slot.in_flight -= 1;
            slot.last_used = Instant::now();
        }
        drop(state);
        self.pool.changed.notify_one();
    }
}

/// Undoes a `starting` reservation if sandbox creation is abandoned (its request went away).
struct StartingGuard<'a>(&'a FunctionPool, bool);

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.state.lock().unwrap().starting -= 1;
            self.0.changed.notify_waiters();
        }
    }
}

/// Decrements the queue length when a waiting request leaves, however it leaves.
struct WaitingGuard<'a>(&'a AtomicU32);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Next {
    Start,
    Wait,
}

/// A name for a new sandbox of `function`, unique on this node while it runs: what
/// `/system/logs` shows as the instance.
fn sandbox_id(function: &str) -> String {
    static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{function}-{}", CREATED.fetch_add(1, Ordering::Relaxed) + 1)
}

impl FunctionPool {
    /// An empty pool for `spec`, whose sandboxes `prepared` makes.
    pub fn new(
        spec: FunctionSpec,
        prepared: Arc<dyn Prepared>,
        logs: Arc<FunctionLogs>,
    ) -> Arc<Self> {
        Arc::new(FunctionPool {
            spec,
            prepared,
            logs,
            state: Mutex::new(PoolState::default()),
            changed: Notify::new(),
            waiting: AtomicU32::new(0),
        })
    }

    /// The spec this pool serves.
    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// Takes a slot, creating a sandbox or waiting for one as the limits allow; gives up at
    /// `deadline` (504) or at once when the queue is full (429).
    pub async fn acquire(self: &Arc<Self>, deadline: Instant) -> Result<Lease, ApiError> {
        let mut waiting: Option<WaitingGuard<'_>> = None;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut state = self.state.lock().unwrap();
                if state.closed {
                    return Err(ApiError::new(
                        ErrorKind::Unavailable,
                        format!("function {} is being replaced or removed", self.spec.name),
                    ));
                }
                let concurrency = self.spec.limits.concurrency;
                let best = state
                    .slots
                    .iter_mut()
                    .filter(|s| s.in_flight < concurrency && s.sandbox.is_alive())
                    .min_by_key(|s| s.in_flight);
                if let Some(slot) = best {
                    slot.in_flight += 1;
                    return Ok(Lease {
                        pool: self.clone(),
                        id: slot.id,
                        sandbox: slot.sandbox.clone(),
                        cold_start: None,
                    });
                }
                let live = state.slots.iter().filter(|s| s.sandbox.is_alive()).count() as u32;
                if live + state.starting < self.spec.scaling.max {
                    state.starting += 1;
                    Next::Start
                } else {
                    Next::Wait
                }
            };
            match next {
                Next::Start => return self.start_for(deadline).await,
                Next::Wait => {
                    if waiting.is_none() {
                        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.spec.scaling.queue {
                            self.waiting.fetch_sub(1, Ordering::SeqCst);
                            return Err(ApiError::new(
                                ErrorKind::Overloaded,
                                format!(
                                    "function {} is at capacity and its queue of {} is full",
                                    self.spec.name, self.spec.scaling.queue
                                ),
                            ));
                        }
                        waiting = Some(WaitingGuard(&self.waiting));
                    }
                    if tokio::time::timeout_at(deadline.into(), notified)
                        .await
                        .is_err()
                    {
                        return Err(ApiError::new(
                            ErrorKind::Timeout,
                            format!(
                                "no sandbox of {} became free within its timeout",
                                self.spec.name
                            ),
                        ));
                    }
                }
            }
        }
    }

    /// Creates a sandbox for the caller, who holds a `starting` reservation.
    async fn start_for(self: &Arc<Self>, deadline: Instant) -> Result<Lease, ApiError> {
        let mut guard = StartingGuard(self, true);
        let started = Instant::now();
        let created = tokio::time::timeout_at(
            deadline.into(),
            self.prepared
                .create_sandbox(self.logs.sink(&sandbox_id(self.spec.name.as_str()))),
        )
        .await;
        let sandbox = match created {
            Ok(Ok(sandbox)) => sandbox,
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => {
                return Err(ApiError::new(
                    ErrorKind::Timeout,
                    format!(
                        "starting a sandbox of {} took longer than its timeout",
                        self.spec.name
                    ),
                ));
            }
        };
        let cold_start = started.elapsed();
        let mut state = self.state.lock().unwrap();
        guard.1 = false;
        state.starting -= 1;
        let id = state.next_id;
        state.next_id += 1;
        state.slots.push(Slot {
            id,
            sandbox: sandbox.clone(),
            in_flight: 1,
            last_used: Instant::now(),
        });
        drop(state);
        tracing::debug!(function = %self.spec.name, sandbox = id, ?cold_start, "sandbox started");
        // Its other slots are free for waiting requests.
        self.changed.notify_waiters();
        Ok(Lease {
            pool: self.clone(),
            id,
            sandbox,
            cold_start: Some(cold_start),
        })
    }

    /// Removes dead sandboxes and those idle past keep-alive (down to `scaling.min`); returns
    /// them for the caller to destroy outside the lock.
    pub fn reap(&self, now: Instant) -> Vec<Arc<dyn Sandbox>> {
        let keep_alive = Duration::from_millis(self.spec.scaling.keep_alive_ms);
        let mut state = self.state.lock().unwrap();
        let mut reaped = Vec::new();
        state.slots.retain(|slot| {
            let dead = !slot.sandbox.is_alive() && slot.in_flight == 0;
            if dead {
                reaped.push(slot.sandbox.clone());
            }
            !dead
        });
        let min = self.spec.scaling.min as usize;
        let mut idle: Vec<(Instant, u64)> = state
            .slots
            .iter()
            .filter(|s| s.in_flight == 0 && now.duration_since(s.last_used) >= keep_alive)
            .map(|s| (s.last_used, s.id))
            .collect();
        idle.sort();
        let removable = state.slots.len().saturating_sub(min).min(idle.len());
        let doomed: Vec<u64> = idle.into_iter().take(removable).map(|(_, id)| id).collect();
        state.slots.retain(|slot| {
            let reap = doomed.contains(&slot.id);
            if reap {
                reaped.push(slot.sandbox.clone());
            }
            !reap
        });
        reaped
    }

    /// Sandboxes to create so that `scaling.min` are up.
    pub fn missing_for_min(&self) -> u32 {
        let state = self.state.lock().unwrap();
        if state.closed {
            return 0;
        }
        let present =
            state.slots.iter().filter(|s| s.sandbox.is_alive()).count() as u32 + state.starting;
        self.spec.scaling.min.saturating_sub(present)
    }

    /// Creates one idle sandbox (for `scaling.min`).
    pub async fn prewarm(self: &Arc<Self>, deadline: Instant) -> Result<(), ApiError> {
        self.state.lock().unwrap().starting += 1;
        let lease = self.start_for(deadline).await?;
        drop(lease);
        Ok(())
    }

    /// Stops admitting requests and returns every sandbox once in-flight requests finish (or
    /// after `grace`), for the caller to destroy.
    pub async fn close(&self, grace: Duration) -> Vec<Arc<dyn Sandbox>> {
        self.state.lock().unwrap().closed = true;
        self.changed.notify_waiters();
        let deadline = Instant::now() + grace;
        loop {
            {
                let mut state = self.state.lock().unwrap();
                if state.slots.iter().all(|s| s.in_flight == 0) || Instant::now() >= deadline {
                    return state.slots.drain(..).map(|s| s.sandbox).collect();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sandbox counts.
    pub fn replicas(&self) -> Replicas {
        let state = self.state.lock().unwrap();
        let ready = state.slots.iter().filter(|s| s.sandbox.is_alive()).count() as u64;
        Replicas {
            running: ready + u64::from(state.starting),
            ready,
        }
    }

    /// The function's recent output.
    pub fn logs(&self) -> &Arc<FunctionLogs> {
        &self.logs
    }

    /// Requests waiting for a slot now.
    pub fn queued(&self) -> u32 {
        self.waiting.load(Ordering::SeqCst)
    }
}
