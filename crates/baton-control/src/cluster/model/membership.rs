//! Membership: workers joining, beating, failing and being adopted; sandboxes dying.

use super::{Added, Effect, Effects, Manager, Millis, Placed, Running, Worker, WorkerRecord};
use baton_api::{SandboxId, WorkerId};
use std::collections::BTreeMap;

impl Manager {
    /// Puts a worker in the picture, alive, replacing an earlier entry of the same id
    /// (whose sandboxes are forgotten: listing it finds the ones still running).
    pub(super) fn join(
        &mut self,
        record: WorkerRecord,
        registered: bool,
        now: Millis,
        effects: &mut Effects,
    ) {
        let id = record.id.clone();
        if self.workers.contains_key(&id) {
            self.forget_sandboxes(&id, effects);
        }
        self.workers.insert(id.clone(), Worker::new(record, now));
        if registered {
            effects.push(Effect::List { worker: id.clone() });
            let functions = self.function_messages();
            if !functions.is_empty() {
                effects.push(Effect::Prepare {
                    worker: id,
                    functions,
                });
            }
        }
    }

    /// Records a heartbeat of a live worker; one declared dead must register again.
    pub(super) fn heartbeat(
        &mut self,
        worker: &WorkerId,
        cpu_used: f64,
        memory_used: u64,
        now: Millis,
    ) {
        if let Some(w) = self.workers.get_mut(worker).filter(|w| w.alive) {
            w.last_heartbeat = now;
            w.cpu_used = cpu_used;
            w.memory_used = memory_used;
        }
    }

    /// Adopts what `worker` runs: sandboxes of current function versions join their
    /// functions; those of removed or replaced functions are deleted.
    pub(super) fn adopt(
        &mut self,
        worker: &WorkerId,
        running: Vec<Running>,
        effects: &mut Effects,
    ) {
        let Some(address) = self.data_address(worker).map(str::to_owned) else {
            return;
        };
        let mut orphans = Vec::new();
        let mut added = Added::new();
        for sandbox in running {
            let Some(f) = self
                .functions
                .get_mut(&sandbox.function)
                .filter(|f| f.version == sandbox.version)
            else {
                orphans.push(sandbox.id);
                continue;
            };
            if f.sandboxes.contains_key(&sandbox.id) {
                continue;
            }
            self.seq += 1;
            let placed = Placed {
                worker: worker.clone(),
                seq: self.seq,
            };
            f.sandboxes.insert(sandbox.id.clone(), placed);
            let demand = f.demand(self.config.sandbox_cpu);
            added
                .entry(sandbox.function)
                .or_insert((f.version, Vec::new()))
                .1
                .push(Self::endpoint(&sandbox.id, worker, &address));
            if let Some(w) = self.workers.get_mut(worker) {
                w.sandboxes.insert(sandbox.id);
                w.reserve(demand, 1);
            }
        }
        if !orphans.is_empty() {
            tracing::info!(%worker, sandboxes = orphans.len(), "deleting sandboxes of removed or replaced functions");
            effects.push(Effect::Delete {
                worker: worker.clone(),
                sandboxes: orphans,
            });
        }
        let adopted: usize = added.values().map(|(_, e)| e.len()).sum();
        if adopted > 0 {
            tracing::info!(%worker, sandboxes = adopted, "adopted running sandboxes");
        }
        let functions: Vec<String> = added.keys().cloned().collect();
        Self::push_added(added, effects);
        for function in functions {
            effects.push(Effect::Wake(function.clone()));
            self.reconcile(&function, effects);
        }
    }

    /// A sandbox died on its worker: forget it; the function gets a replacement.
    pub(super) fn sandbox_failed(
        &mut self,
        worker: &WorkerId,
        sandbox: &SandboxId,
        effects: &mut Effects,
    ) {
        let Some((name, f)) = self.functions.iter_mut().find(|(_, f)| {
            f.sandboxes
                .get(sandbox)
                .is_some_and(|p| p.worker == *worker)
        }) else {
            return;
        };
        let name = name.clone();
        f.sandboxes.remove(sandbox);
        let (demand, version) = (f.demand(self.config.sandbox_cpu), f.version);
        if let Some(w) = self.workers.get_mut(worker) {
            w.release(sandbox, demand);
        }
        tracing::warn!(%worker, %sandbox, function = %name, "sandbox failed; replacing it");
        effects.push(Self::endpoints_update(
            &name,
            version,
            Vec::new(),
            vec![sandbox.clone()],
        ));
        effects.push(Effect::Wake(name.clone()));
        self.reconcile(&name, effects);
    }

    /// Declares workers dead after missed heartbeats.
    pub(super) fn detect_failures(&mut self, now: Millis, effects: &mut Effects) {
        let limit = self.config.failure_after.as_millis() as Millis;
        let dead: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.alive && now.saturating_sub(w.last_heartbeat) > limit)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.declare_dead(&id, "missed heartbeats", effects);
        }
    }

    /// Takes a worker out: its sandboxes leave every gateway and are recreated elsewhere.
    pub(super) fn declare_dead(&mut self, worker: &WorkerId, reason: &str, effects: &mut Effects) {
        match self.workers.get_mut(worker) {
            Some(w) if w.alive => w.alive = false,
            _ => return,
        }
        let affected = self.forget_sandboxes(worker, effects);
        tracing::warn!(%worker, reason, functions = affected.len(), "worker declared dead; replacing its sandboxes");
        for function in affected {
            self.reconcile(&function, effects);
        }
    }

    /// Removes every sandbox of `worker` from its functions and from the gateways; returns
    /// the functions that lost sandboxes.
    fn forget_sandboxes(&mut self, worker: &WorkerId, effects: &mut Effects) -> Vec<String> {
        let Some(w) = self.workers.get_mut(worker) else {
            return Vec::new();
        };
        let lost: Vec<SandboxId> = w.sandboxes.drain().collect();
        w.requested_cpu = 0.0;
        w.requested_memory = 0;
        let mut by_function: BTreeMap<String, (u64, Vec<SandboxId>)> = BTreeMap::new();
        for (name, function) in self.functions.iter_mut() {
            for id in &lost {
                if function.sandboxes.remove(id).is_some() {
                    by_function
                        .entry(name.clone())
                        .or_insert((function.version, Vec::new()))
                        .1
                        .push(id.clone());
                }
            }
        }
        let affected: Vec<String> = by_function.keys().cloned().collect();
        for (function, (version, mut removed)) in by_function {
            removed.sort();
            effects.push(Self::endpoints_update(
                &function,
                version,
                Vec::new(),
                removed,
            ));
            effects.push(Effect::Wake(function));
        }
        affected
    }
}
