//! The pool's admission, queueing and reaping rules, with a fake sandbox whose requests
//! block until the test releases them.

use async_trait::async_trait;
use baton_api::{ErrorKind, FunctionName, FunctionSpec, Limits, ProcessMode, RuntimeSpec, Scaling};
use baton_runtime::{FunctionLogs, InvokeError, LogSink, Prepared, Request, Response, Sandbox};
use baton_worker::FunctionPool;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct FakePrepared {
    created: AtomicU32,
    /// Liveness flag of each sandbox created, in order; a test clears one to "kill" it.
    alive: Mutex<Vec<Arc<AtomicBool>>>,
}

struct FakeSandbox {
    alive: Arc<AtomicBool>,
}

#[async_trait]
impl Prepared for FakePrepared {
    async fn create_sandbox(&self, _logs: LogSink) -> Result<Arc<dyn Sandbox>, InvokeError> {
        self.created.fetch_add(1, Ordering::SeqCst);
        let alive = Arc::new(AtomicBool::new(true));
        self.alive.lock().unwrap().push(alive.clone());
        Ok(Arc::new(FakeSandbox { alive }))
    }
}

#[async_trait]
impl Sandbox for FakeSandbox {
    async fn invoke(&self, _request: Request) -> Result<Response, InvokeError> {
        Ok(Response::new(Default::default()))
    }
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
}

fn pool(concurrency: u32, scaling: Scaling) -> (Arc<FunctionPool>, Arc<FakePrepared>) {
    let runtime = RuntimeSpec::Process {
        command: vec!["x".into()],
        mode: ProcessMode::Http,
        working_dir: None,
    };
    let spec = FunctionSpec {
        limits: Limits {
            concurrency,
            ..Limits::default()
        },
        scaling,
        ..FunctionSpec::new(FunctionName::new("f").unwrap(), runtime)
    };
    let prepared = Arc::new(FakePrepared::default());
    (
        FunctionPool::new(spec, prepared.clone(), Arc::new(FunctionLogs::new(10))),
        prepared,
    )
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn first_request_is_cold_and_later_ones_reuse_the_sandbox() {
    let (pool, prepared) = pool(
        2,
        Scaling {
            max: 3,
            ..Scaling::default()
        },
    );
    let first = pool.acquire(soon()).await.unwrap();
    assert!(first.cold_start.is_some());
    drop(first);
    let second = pool.acquire(soon()).await.unwrap();
    assert!(second.cold_start.is_none());
    assert_eq!(prepared.created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrency_per_sandbox_is_honoured_up_to_max_sandboxes() {
    let (pool, prepared) = pool(
        2,
        Scaling {
            max: 2,
            queue: 10,
            ..Scaling::default()
        },
    );
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(pool.acquire(soon()).await.unwrap());
    }
    assert_eq!(
        prepared.created.load(Ordering::SeqCst),
        2,
        "4 requests at concurrency 2 need 2 sandboxes"
    );
    assert_eq!(pool.replicas().ready, 2);
    // A fifth waits, and gets the slot the moment one frees.
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire(soon()).await.map(|l| l.cold_start.is_none()) }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.queued(), 1);
    leases.pop();
    assert!(waiter.await.unwrap().unwrap());
    assert_eq!(prepared.created.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_and_a_late_slot_times_out() {
    let (pool, _) = pool(
        1,
        Scaling {
            max: 1,
            queue: 1,
            ..Scaling::default()
        },
    );
    let _busy = pool.acquire(soon()).await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.acquire(Instant::now() + Duration::from_millis(200))
                .await
                .err()
                .map(|e| e.kind)
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rejected = pool.acquire(soon()).await.err().unwrap();
    assert_eq!(rejected.kind, ErrorKind::Overloaded);
    assert_eq!(waiter.await.unwrap(), Some(ErrorKind::Timeout));
    assert_eq!(pool.queued(), 0, "a request that gave up leaves the queue");
}

#[tokio::test]
async fn idle_sandboxes_are_reaped_to_min_and_dead_ones_at_once() {
    let (pool, _) = pool(
        1,
        Scaling {
            min: 1,
            max: 3,
            keep_alive_ms: 1000,
            queue: 10,
            ..Scaling::default()
        },
    );
    let leases: Vec<_> = futures_like_join(&pool, 3).await;
    drop(leases);
    assert_eq!(pool.reap(Instant::now()).len(), 0, "not idle long enough");
    let later = Instant::now() + Duration::from_secs(2);
    assert_eq!(pool.reap(later).len(), 2, "reaped down to min");
    assert_eq!(pool.replicas().ready, 1);
    assert_eq!(pool.missing_for_min(), 0);
}

#[tokio::test]
async fn a_dead_sandbox_is_replaced_by_the_next_request() {
    let (pool, prepared) = pool(
        1,
        Scaling {
            max: 1,
            ..Scaling::default()
        },
    );
    let lease = pool.acquire(soon()).await.unwrap();
    drop(lease);
    // The sandbox's process dies.
    prepared.alive.lock().unwrap()[0].store(false, Ordering::SeqCst);
    let next = pool.acquire(soon()).await.unwrap();
    assert!(next.cold_start.is_some());
    assert_eq!(prepared.created.load(Ordering::SeqCst), 2);
    drop(next);
    assert_eq!(pool.reap(Instant::now()).len(), 1, "the dead one is reaped");
}

#[tokio::test]
async fn closing_refuses_new_requests_and_returns_sandboxes_after_in_flight_ends() {
    let (pool, _) = pool(1, Scaling::default());
    let lease = pool.acquire(soon()).await.unwrap();
    let closing = tokio::spawn({
        let pool = pool.clone();
        async move { pool.close(Duration::from_secs(5)).await.len() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        pool.acquire(soon()).await.err().unwrap().kind,
        ErrorKind::Unavailable
    );
    assert!(!closing.is_finished());
    drop(lease);
    assert_eq!(closing.await.unwrap(), 1);
}

async fn futures_like_join(pool: &Arc<FunctionPool>, n: usize) -> Vec<baton_worker::Lease> {
    let mut leases = Vec::new();
    for _ in 0..n {
        leases.push(pool.acquire(soon()).await.unwrap());
    }
    leases
}
