//! Functions coming and going: a deployment installs a definition (a new version replaces
//! every sandbox of the old), a deletion removes it and its sandboxes.

use super::{Effect, Effects, Function, Manager};
use crate::autoscaler::{ConcurrencyWindow, KpaState};
use baton_api::cluster::GatewayUpdate;
use baton_api::{FunctionSpec, SandboxId, WorkerId};
use std::collections::{BTreeMap, HashMap};

impl Manager {
    /// Makes `spec` at `version` the function's current definition; the scale carries over.
    pub(super) fn install(&mut self, spec: FunctionSpec, version: u64, effects: &mut Effects) {
        let name = spec.name.to_string();
        let spec_memory = spec.limits.memory_bytes;
        let previous = self.functions.remove(&name);
        let desired = previous
            .as_ref()
            .map_or(spec.scaling.min, |p| p.desired)
            .clamp(spec.scaling.min, spec.scaling.max);
        let mut function = Function {
            spec,
            version,
            sandboxes: BTreeMap::new(),
            creating: 0,
            desired,
            window: ConcurrencyWindow::default(),
            kpa: KpaState::default(),
            loads: HashMap::new(),
            pinned_until: None,
            usage: crate::keep_alive::Usage::new(spec_memory),
        };
        let mut retired: BTreeMap<WorkerId, Vec<SandboxId>> = BTreeMap::new();
        if let Some(previous) = previous {
            function.window = previous.window.clone();
            function.kpa = previous.kpa.clone();
            function.loads = previous.loads.clone();
            function.usage = crate::keep_alive::Usage {
                memory: spec_memory,
                ..previous.usage.clone()
            };
            if previous.version == version {
                function.sandboxes = previous.sandboxes;
                function.creating = previous.creating;
            } else {
                let demand = previous.demand(self.config.sandbox_cpu);
                for (id, placed) in previous.sandboxes {
                    if let Some(w) = self.workers.get_mut(&placed.worker) {
                        w.release(&id, demand);
                    }
                    retired.entry(placed.worker).or_default().push(id);
                }
            }
        }
        let message = function.message();
        self.functions.insert(name.clone(), function);
        effects.push(Effect::Push(GatewayUpdate {
            functions: vec![message.clone()],
            ..GatewayUpdate::default()
        }));
        for (worker, sandboxes) in retired {
            effects.push(Effect::Delete { worker, sandboxes });
        }
        if !self.recovering {
            // Like an image pre-pull: every worker fetches and compiles the function now,
            // so its first sandbox anywhere is a cheap instantiation.
            for (id, _) in self.workers.iter().filter(|(_, w)| w.alive) {
                effects.push(Effect::Prepare {
                    worker: id.clone(),
                    functions: vec![message.clone()],
                });
            }
        }
        effects.push(Effect::Wake(name.clone()));
        self.reconcile(&name, effects);
    }

    /// Forgets a deleted function; its sandboxes leave the gateways and are deleted.
    pub(super) fn remove(&mut self, name: &str, effects: &mut Effects) {
        let Some(f) = self.functions.remove(name) else {
            return;
        };
        effects.push(Effect::Push(GatewayUpdate {
            removed_functions: vec![name.to_owned()],
            ..GatewayUpdate::default()
        }));
        let demand = f.demand(self.config.sandbox_cpu);
        let mut by_worker: BTreeMap<WorkerId, Vec<SandboxId>> = BTreeMap::new();
        for (id, placed) in f.sandboxes {
            if let Some(w) = self.workers.get_mut(&placed.worker) {
                w.release(&id, demand);
            }
            by_worker.entry(placed.worker).or_default().push(id);
        }
        for (worker, sandboxes) in by_worker {
            effects.push(Effect::Delete { worker, sandboxes });
        }
        for (id, _) in self.workers.iter().filter(|(_, w)| w.alive) {
            effects.push(Effect::Forget {
                worker: id.clone(),
                function: name.to_owned(),
            });
        }
        effects.push(Effect::Wake(name.to_owned()));
    }
}
