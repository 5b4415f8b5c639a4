//! Table tests of the model's decisions: each case drives a manager through events at
//! given times and compares the effects, summarised as short strings, and the picture.

use super::*;
use crate::placement::placement_policy;
use baton_api::cluster::FunctionLoad;
use baton_api::{FunctionName, RuntimeSpec};

/// A manager over named workers, with the creations it asked for and not yet answered.
struct Sim {
    model: Manager,
    now: Millis,
    asked: Vec<(WorkerId, SandboxId)>,
}

fn spec(name: &str, min: u32, max: u32) -> FunctionSpec {
    let mut spec = FunctionSpec::new(
        FunctionName::new(name).unwrap(),
        RuntimeSpec::Process {
            command: vec!["cat".into()],
            mode: baton_api::ProcessMode::Http,
            working_dir: None,
        },
    );
    spec.scaling.min = min;
    spec.scaling.max = max;
    spec
}

fn record(id: &str) -> WorkerRecord {
    WorkerRecord {
        id: WorkerId::from(id),
        grpc_address: format!("{id}:1"),
        data_address: format!("{id}:2"),
        cpu_cores: 4.0,
        memory_bytes: 8 << 30,
        state_address: format!("{id}:3"),
    }
}

/// One effect in a few words, so a case lists what it expects at a glance.
fn summary(effect: &Effect) -> String {
    match effect {
        Effect::Create {
            worker,
            function,
            sandboxes,
        } => format!(
            "create {}@{} x{} on {worker}",
            function.name,
            function.version,
            sandboxes.len()
        ),
        Effect::Delete { worker, sandboxes } => format!("delete x{} on {worker}", sandboxes.len()),
        Effect::Prepare { worker, functions } => {
            let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
            format!("prepare {} on {worker}", names.join(","))
        }
        Effect::List { worker } => format!("list {worker}"),
        Effect::Forget { worker, function } => format!("forget {function} on {worker}"),
        Effect::Probe { worker, .. } => format!("probe {worker}"),
        Effect::Wake(function) => format!("wake {function}"),
        Effect::Push(update) => {
            let mut parts = Vec::new();
            for f in &update.functions {
                parts.push(format!("+{}@{}", f.name, f.version));
            }
            for f in &update.removed_functions {
                parts.push(format!("-{f}"));
            }
            for e in &update.endpoints {
                parts.push(format!(
                    "{}: +{} -{}",
                    e.function,
                    e.added.len(),
                    e.removed.len()
                ));
            }
            format!("push {}", parts.join(" "))
        }
    }
}

impl Sim {
    /// A recovered manager (scaling on) with these workers registered at time 0.
    fn new(workers: &[&str]) -> Sim {
        let mut sim = Sim::recovering(workers);
        sim.apply(Event::Recovered);
        sim
    }

    /// A manager just restarted: these workers read back from the store, not yet listed.
    fn recovering(workers: &[&str]) -> Sim {
        let placement = placement_policy("round-robin").unwrap();
        let mut sim = Sim {
            model: Manager::new(ModelConfig::default(), placement, 7),
            now: 0,
            asked: Vec::new(),
        };
        for id in workers {
            sim.apply(Event::WorkerJoined {
                record: record(id),
                registered: false,
            });
        }
        sim
    }

    /// Applies `event` now; remembers the creations asked; returns the effects summarised.
    fn apply(&mut self, event: Event) -> Vec<String> {
        let effects = self.model.apply(self.now, event);
        for effect in &effects {
            if let Effect::Create {
                worker, sandboxes, ..
            } = effect
            {
                self.asked
                    .extend(sandboxes.iter().map(|id| (worker.clone(), id.clone())));
            }
        }
        effects.iter().map(summary).collect()
    }

    /// Every creation asked so far succeeds (each worker answers once).
    fn answer_all(&mut self) -> Vec<String> {
        self.answer(|_| None)
    }

    /// Every creation asked so far gets its answer: created, or failed with the reason
    /// `outcome` gives for its worker.
    fn answer(&mut self, outcome: impl Fn(&WorkerId) -> Option<String>) -> Vec<String> {
        let mut by_worker: BTreeMap<WorkerId, Vec<SandboxId>> = BTreeMap::new();
        for (worker, id) in std::mem::take(&mut self.asked) {
            by_worker.entry(worker).or_default().push(id);
        }
        let mut out = Vec::new();
        for (worker, ids) in by_worker {
            let event = match outcome(&worker) {
                None => Event::Created {
                    worker,
                    created: ids,
                    failed: Vec::new(),
                },
                Some(why) => Event::Created {
                    worker,
                    created: Vec::new(),
                    failed: ids.into_iter().map(|id| (id, why.clone())).collect(),
                },
            };
            out.extend(self.apply(event));
        }
        out
    }

    fn deploy(&mut self, name: &str, min: u32, max: u32) -> Vec<String> {
        self.apply(Event::Install {
            spec: spec(name, min, max),
            version: 1,
        })
    }

    /// Where each sandbox of `function` runs: worker → count.
    fn placement(&self, function: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for placed in self.model.functions[function].sandboxes.values() {
            *out.entry(placed.worker.to_string()).or_default() += 1;
        }
        out
    }

    fn beat(&mut self, worker: &str) {
        self.apply(Event::Heartbeat {
            worker: WorkerId::from(worker),
            cpu_used: 0.0,
            memory_used: 0,
        });
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reconcile_creates_what_is_missing_and_deletes_the_newest_extra() {
    struct Case {
        case: &'static str,
        workers: &'static [&'static str],
        min: u32,
        /// A manual scale to this many.
        to: u32,
        /// Its effects.
        expected: &'static [&'static str],
    }
    let cases = [
        Case {
            case: "grows round robin",
            workers: &["w1", "w2"],
            min: 0,
            to: 3,
            expected: &["create f@1 x2 on w1", "create f@1 x1 on w2"],
        },
        Case {
            case: "shrinks: endpoints leave gateways before the worker drains them",
            workers: &["w1", "w2"],
            min: 4,
            to: 1,
            expected: &[
                "push f: +0 -3",
                "delete x1 on w1",
                "delete x2 on w2",
                "wake f",
            ],
        },
        Case {
            case: "no change",
            workers: &["w1"],
            min: 2,
            to: 2,
            expected: &[],
        },
        Case {
            case: "no worker: nothing placed, nothing lost",
            workers: &[],
            min: 0,
            to: 2,
            expected: &[],
        },
        Case {
            case: "above the maximum (8): the maximum",
            workers: &["w1"],
            min: 0,
            to: 12,
            expected: &["create f@1 x8 on w1"],
        },
        Case {
            case: "to zero",
            workers: &["w1"],
            min: 1,
            to: 0,
            expected: &["push f: +0 -1", "delete x1 on w1", "wake f"],
        },
    ];
    for Case {
        case,
        workers,
        min,
        to,
        expected,
    } in cases
    {
        let mut sim = Sim::new(workers);
        sim.deploy("f", min, 8);
        sim.answer_all();
        let by_age = |sim: &Sim| {
            let mut ids: Vec<(u64, SandboxId)> = sim.model.functions["f"]
                .sandboxes
                .iter()
                .map(|(id, p)| (p.seq, id.clone()))
                .collect();
            ids.sort();
            ids.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        };
        let before = by_age(&sim);
        let effects = sim.apply(Event::Scale {
            function: "f".into(),
            replicas: to,
        });
        assert_eq!(effects, strings(expected), "{case}");
        if to < min {
            // The oldest stay: they are the warmest.
            assert_eq!(by_age(&sim), before[..to as usize], "{case}");
        }
        sim.answer_all();
        let ready = if workers.is_empty() { 0 } else { to.min(8) };
        assert_eq!(sim.model.ready("f"), Some(ready), "{case}");
    }
}

#[test]
fn reconcile_waits_for_creations_in_flight_before_shrinking_and_retries_failures() {
    let mut sim = Sim::new(&["w1"]);
    sim.deploy("f", 0, 8);
    sim.apply(Event::Scale {
        function: "f".into(),
        replicas: 3,
    });
    // Shrinking while three are being created: nothing yet.
    assert!(
        sim.apply(Event::Scale {
            function: "f".into(),
            replicas: 1,
        })
        .is_empty()
    );
    assert_eq!(sim.model.replicas("f").running, 3);
    // They fail: the reservation is returned, and the next pass asks again.
    assert_eq!(
        sim.answer(|_| Some("no memory".into())),
        strings(&["wake f"])
    );
    assert_eq!(sim.model.workers["w1"].requested_memory, 0);
    sim.now += 1000;
    assert_eq!(
        sim.apply(Event::Autoscale),
        strings(&["create f@1 x1 on w1"])
    );
}

#[test]
fn scale_from_zero_creates_one_sandbox_at_once_and_only_once() {
    // (case, min, max, deploy answered, asks, effects of the last ask)
    let cases: [(&str, u32, u32, u32, &[&str]); 4] = [
        ("at zero", 0, 4, 1, &["create f@1 x1 on w1"]),
        ("second ask while creating", 0, 4, 2, &[]),
        ("max 0 stays at zero", 0, 0, 1, &[]),
        ("already running", 1, 4, 1, &[]),
    ];
    for (case, min, max, asks, expected) in cases {
        let mut sim = Sim::new(&["w1"]);
        sim.deploy("f", min, max);
        sim.answer_all();
        let mut effects = Vec::new();
        for _ in 0..asks {
            effects = sim.apply(Event::ScaleFromZero {
                function: "f".into(),
            });
        }
        assert_eq!(effects, strings(expected), "{case}");
    }
    // A gateway's queued requests ask too; an unknown function asks nothing.
    let mut sim = Sim::new(&["w1"]);
    sim.deploy("f", 0, 4);
    let load = |function: &str, queued| Event::Load {
        gateway: GatewayId::from("g"),
        loads: vec![FunctionLoad {
            function: function.into(),
            concurrency: 1.0,
            queued,
            requests: 0,
        }],
    };
    assert!(sim.apply(load("f", 0)).is_empty());
    assert_eq!(sim.apply(load("f", 3)), strings(&["create f@1 x1 on w1"]));
    assert!(sim.apply(load("nope", 3)).is_empty());
    // Then the sandbox comes up and every gateway learns it.
    assert_eq!(sim.answer_all(), strings(&["push f: +1 -0", "wake f"]));
}

#[test]
fn a_silent_worker_is_declared_dead_and_its_sandboxes_move() {
    struct Case {
        case: &'static str,
        workers: &'static [&'static str],
        /// Who beats at 2.5 s.
        beating: &'static [&'static str],
        /// Effects of the detection at 3.5 s.
        expected: &'static [&'static str],
        /// Where the function's sandboxes run after.
        after: &'static [(&'static str, usize)],
    }
    let cases = [
        Case {
            case: "w2 silent: its sandbox is recreated on w1",
            workers: &["w1", "w2"],
            beating: &["w1"],
            expected: &["push f: +0 -1", "wake f", "create f@1 x1 on w1"],
            after: &[("w1", 2)],
        },
        Case {
            case: "both beat: nothing",
            workers: &["w1", "w2"],
            beating: &["w1", "w2"],
            expected: &[],
            after: &[("w1", 1), ("w2", 1)],
        },
        Case {
            case: "the only worker: its sandboxes leave, nowhere to go",
            workers: &["w1"],
            beating: &[],
            expected: &["push f: +0 -2", "wake f"],
            after: &[],
        },
    ];
    for Case {
        case,
        workers,
        beating,
        expected,
        after,
    } in cases
    {
        let mut sim = Sim::new(workers);
        sim.deploy("f", 2, 8);
        sim.answer_all();
        sim.now = 2500;
        for worker in beating {
            sim.beat(worker);
        }
        sim.now = 3500;
        assert_eq!(
            sim.apply(Event::DetectFailures),
            strings(expected),
            "{case}"
        );
        sim.answer_all();
        let after: BTreeMap<String, usize> =
            after.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        assert_eq!(sim.placement("f"), after, "{case}");
    }
}

#[test]
fn a_dead_worker_stays_dead_until_it_registers_and_is_listed_again() {
    let mut sim = Sim::new(&["w1", "w2"]);
    sim.deploy("f", 2, 8);
    sim.answer_all();
    let dead = Event::WorkerDead {
        worker: WorkerId::from("w2"),
        reason: "probe failed".into(),
    };
    assert_eq!(
        sim.apply(dead.clone()),
        strings(&["push f: +0 -1", "wake f", "create f@1 x1 on w1"])
    );
    assert!(sim.apply(dead).is_empty(), "declared once");
    sim.beat("w2");
    assert!(
        !sim.model.alive(&WorkerId::from("w2")),
        "a heartbeat does not revive"
    );
    // A gateway's suspicion of a dead worker probes nothing.
    assert!(
        sim.apply(Event::Unreachable {
            worker: WorkerId::from("w2"),
            reason: "refused".into()
        })
        .is_empty()
    );
    assert_eq!(
        sim.apply(Event::WorkerJoined {
            record: record("w2"),
            registered: true,
        }),
        strings(&["list w2", "prepare f on w2"])
    );
    assert!(sim.model.alive(&WorkerId::from("w2")));
    // Its state agent is everyone's peer again, and never its own.
    assert_eq!(
        sim.model.state_peers(&WorkerId::from("w1")),
        strings(&["w2:3"])
    );
    assert_eq!(
        sim.model.state_peers(&WorkerId::from("w2")),
        strings(&["w1:3"])
    );
}

#[test]
fn a_restarted_manager_adopts_what_workers_run_and_scales_nothing_down_at_once() {
    let running = |id: &str, function: &str, version| Running {
        id: SandboxId::from(id),
        function: function.into(),
        version,
    };
    let mut sim = Sim::recovering(&["w1", "w2"]);
    sim.apply(Event::Install {
        spec: spec("f", 0, 8),
        version: 2,
    });
    sim.apply(Event::Install {
        spec: spec("g", 3, 8),
        version: 1,
    });
    // While recovering nothing is created or prepared.
    assert!(sim.asked.is_empty());
    // (case, worker, listed, effects)
    let cases: [(&str, &str, Vec<Running>, &[&str]); 3] = [
        (
            "current versions adopted, old and unknown deleted",
            "w1",
            vec![
                running("f-1", "f", 2),
                running("f-0", "f", 1),
                running("x-1", "gone", 1),
                running("g-1", "g", 1),
            ],
            &[
                "delete x2 on w1",
                "push f: +1 -0",
                "push g: +1 -0",
                "wake f",
                "wake g",
            ],
        ),
        (
            "listed twice: adopted once",
            "w1",
            vec![running("f-1", "f", 2)],
            &[],
        ),
        (
            "another worker",
            "w2",
            vec![running("f-2", "f", 2)],
            &["push f: +1 -0", "wake f"],
        ),
    ];
    for (case, worker, sandboxes, expected) in cases {
        let event = Event::Listed {
            worker: WorkerId::from(worker),
            sandboxes,
        };
        assert_eq!(sim.apply(event), strings(expected), "{case}");
    }
    assert_eq!(sim.model.sandbox_count(), 3);
    // Recovered: g's minimum of 3 is made up; f keeps its 2 although idle.
    assert_eq!(
        sim.apply(Event::Recovered),
        strings(&["create g@1 x1 on w1", "create g@1 x1 on w2"])
    );
    sim.answer_all();
    sim.now += 10_000;
    assert!(sim.apply(Event::Autoscale).is_empty());
    assert_eq!(sim.model.ready("f"), Some(2));
    assert_eq!(sim.model.ready("g"), Some(3));
}

#[test]
fn removing_a_function_deletes_its_sandboxes_and_late_creations() {
    let mut sim = Sim::new(&["w1", "w2"]);
    sim.deploy("f", 3, 8);
    sim.answer_all();
    sim.apply(Event::Scale {
        function: "f".into(),
        replicas: 5,
    });
    assert_eq!(
        sim.apply(Event::Remove {
            function: "f".into()
        }),
        strings(&[
            "push -f",
            "delete x2 on w1",
            "delete x1 on w2",
            "forget f on w1",
            "forget f on w2",
            "wake f"
        ])
    );
    assert_eq!(sim.model.replicas("f"), Replicas::default());
    // The two creations in flight come up for a function that is gone: deleted, and
    // what they reserved is given back.
    assert_eq!(
        sim.answer_all(),
        strings(&["delete x1 on w1", "delete x1 on w2"])
    );
    for worker in ["w1", "w2"] {
        assert!(sim.model.workers[worker].requested_cpu < 1e-9, "{worker}");
    }
    assert!(
        sim.apply(Event::Remove {
            function: "f".into()
        })
        .is_empty()
    );
}

#[test]
fn a_new_version_replaces_every_sandbox_and_keeps_the_scale() {
    let mut sim = Sim::new(&["w1"]);
    sim.deploy("f", 0, 8);
    sim.apply(Event::Scale {
        function: "f".into(),
        replicas: 2,
    });
    sim.answer_all();
    assert_eq!(
        sim.apply(Event::Install {
            spec: spec("f", 0, 8),
            version: 2,
        }),
        strings(&[
            "push +f@2",
            "delete x2 on w1",
            "prepare f on w1",
            "wake f",
            "create f@2 x2 on w1"
        ])
    );
    sim.answer_all();
    assert_eq!(sim.model.ready("f"), Some(2));
    // The snapshot a new gateway gets has the function once, with its new sandboxes.
    let snapshot = sim.model.snapshot();
    assert_eq!(snapshot.functions.len(), 1);
    assert_eq!(snapshot.endpoints[0].added.len(), 2);
    assert!(
        snapshot.endpoints[0]
            .added
            .iter()
            .all(|e| e.address == "w1:2")
    );
}

/// A recovered manager under `policy` with one worker that has room for two sandboxes of
/// 128 MiB, and three functions; `a` and `b` run one sandbox each, `a` used often and early
/// (five seconds of load), `b` once and last.
fn two_idle_functions(policy: crate::keep_alive::KeepAlive) -> Sim {
    two_idle_functions_on(
        policy,
        WorkerRecord {
            memory_bytes: 256 << 20,
            ..record("w1")
        },
    )
}

/// [`two_idle_functions`] on a worker of its own.
fn two_idle_functions_on(policy: crate::keep_alive::KeepAlive, worker: WorkerRecord) -> Sim {
    let config = ModelConfig {
        keep_alive: policy,
        ..ModelConfig::default()
    };
    let placement = placement_policy("resource-fit").unwrap();
    let mut sim = Sim {
        model: Manager::new(config, placement, 7),
        now: 0,
        asked: Vec::new(),
    };
    sim.apply(Event::WorkerJoined {
        record: worker,
        registered: false,
    });
    sim.apply(Event::Recovered);
    for f in ["a", "b", "c"] {
        sim.deploy(f, 0, 4);
    }
    for f in ["a", "b"] {
        sim.apply(Event::ScaleFromZero { function: f.into() });
        sim.answer_all();
    }
    let load = |function: &str| Event::Load {
        gateway: GatewayId::from("g"),
        loads: vec![FunctionLoad {
            function: function.into(),
            concurrency: 1.0,
            queued: 0,
            requests: 0,
        }],
    };
    for t in 1..=5 {
        sim.now = t * 1_000;
        sim.apply(load("a"));
    }
    sim.now = 6_000;
    sim.apply(load("b"));
    sim
}

fn sandboxes(sim: &Sim, function: &str) -> usize {
    sim.model.functions[function].sandboxes.len()
}

#[test]
fn idle_sandboxes_outlive_the_grace_only_under_caching_policies() {
    use crate::keep_alive::KeepAlive;
    for (policy, kept) in [
        (KeepAlive::Ttl, 0),
        (KeepAlive::Lru, 1),
        (KeepAlive::GreedyDual, 1),
    ] {
        let mut sim = two_idle_functions(policy);
        // Idle long past the grace (30 s) and the stable window (60 s).
        for t in 7..=200 {
            sim.now = t * 1_000;
            sim.apply(Event::Autoscale);
        }
        assert_eq!(
            (sandboxes(&sim, "a"), sandboxes(&sim, "b")),
            (kept, kept),
            "{policy:?}"
        );
    }
}

#[test]
fn a_creation_that_needs_memory_evicts_idle_sandboxes_in_the_policys_order() {
    use crate::keep_alive::KeepAlive;
    // Within the grace, the worker full: `c` needs one of the idle sandboxes' memory.
    for (policy, evicted) in [
        (KeepAlive::Ttl, "a"),
        (KeepAlive::Lru, "a"),
        (KeepAlive::GreedyDual, "b"),
    ] {
        let mut sim = two_idle_functions(policy);
        sim.now = 10_000;
        sim.apply(Event::Autoscale);
        let effects = sim.apply(Event::ScaleFromZero {
            function: "c".into(),
        });
        let other = if evicted == "a" { "b" } else { "a" };
        assert_eq!(
            (sandboxes(&sim, evicted), sandboxes(&sim, other)),
            (0, 1),
            "{policy:?}: {effects:?}"
        );
        for expected in [
            format!("push {evicted}: +0 -1"),
            "delete x1 on w1".into(),
            "create c@1 x1 on w1".into(),
        ] {
            assert!(effects.contains(&expected), "{policy:?}: {effects:?}");
        }
        // The evicted function is not brought straight back by the next pass.
        sim.now = 11_000;
        let next = sim.apply(Event::Autoscale);
        assert!(
            !next
                .iter()
                .any(|e| e.starts_with(&format!("create {evicted}"))),
            "{policy:?}: {next:?}"
        );
        // With nothing idle left to evict (both remaining in use), nothing more goes.
        let busy = sim.apply(Event::Load {
            gateway: GatewayId::from("g"),
            loads: vec![FunctionLoad {
                function: other.into(),
                concurrency: 1.0,
                queued: 0,
                requests: 0,
            }],
        });
        assert!(!busy.iter().any(|e| e.starts_with("delete")), "{busy:?}");
    }
}

/// A worker whose cores are all claimed (two sandboxes of 0.1 core on 0.2) has memory to
/// spare, yet a creation cannot be placed: keep-alive evicts idle sandboxes for it as it
/// does for memory, rather than leaving the function waiting for room that never comes.
#[test]
fn a_creation_evicts_idle_sandboxes_when_cpu_is_what_is_short() {
    use crate::keep_alive::KeepAlive;
    for policy in [KeepAlive::Ttl, KeepAlive::Lru, KeepAlive::GreedyDual] {
        let worker = WorkerRecord {
            cpu_cores: 0.2,
            ..record("w1")
        };
        let mut sim = two_idle_functions_on(policy, worker);
        sim.now = 10_000;
        sim.apply(Event::Autoscale);
        let effects = sim.apply(Event::ScaleFromZero {
            function: "c".into(),
        });
        assert!(
            effects.contains(&"create c@1 x1 on w1".to_string()),
            "{policy:?}: {effects:?}"
        );
        assert_eq!(
            sandboxes(&sim, "a") + sandboxes(&sim, "b"),
            1,
            "{policy:?}: one idle sandbox made way: {effects:?}"
        );
    }
}

#[test]
fn the_shortfall_counts_memory_in_bytes_and_cpu_in_sandboxes() {
    use crate::keep_alive::Need;
    use crate::placement::WorkerLoad;
    const GIB: u64 = 1 << 30;
    let demand = Demand {
        cpu: 0.5,
        memory: GIB,
    };
    let worker = |cpu_used: f64, memory_used: u64| WorkerLoad {
        cpu_cores: 2.0,
        memory_bytes: 4 * GIB,
        cpu_used,
        memory_used,
    };
    let cases: [(&[WorkerLoad], u64, Option<Need>); 5] = [
        (&[worker(0.0, 0)], 2, None),
        // Memory short: 3 GiB used, two more asked: 1 GiB to free.
        (&[worker(0.0, 3 * GIB)], 2, Some(Need::memory(GIB))),
        // CPU short: 1.5 of 2 cores claimed, two more asked: one sandbox to evict.
        (
            &[worker(1.5, 0)],
            2,
            Some(Need {
                memory: 0,
                sandboxes: 1,
            }),
        ),
        // Both.
        (
            &[worker(2.0, 4 * GIB)],
            1,
            Some(Need {
                memory: GIB,
                sandboxes: 1,
            }),
        ),
        // Half a sandbox free on each of two workers: room in sum, none on one.
        (
            &[
                worker(0.0, 3 * GIB + GIB / 2),
                worker(0.0, 3 * GIB + GIB / 2),
            ],
            1,
            Some(Need {
                memory: GIB,
                sandboxes: 1,
            }),
        ),
    ];
    for (loads, count, need) in cases {
        assert_eq!(
            super::scaling::shortfall(loads, count, demand),
            need,
            "{loads:?} +{count}"
        );
    }
}
