//! Scaling: the autoscaler's passes, scale from zero, manual scale, and bringing each
//! function's sandboxes to its desired count as creations are answered.

use super::{Added, Effect, Effects, Manager, Millis, Pending, Placed};
use crate::autoscaler::{ConcurrencyWindow, KpaState, decide};
use crate::keep_alive::Usage;
use crate::placement::Demand;
use baton_api::cluster as proto;
use baton_api::{GatewayId, SandboxId, WorkerId};
use std::collections::BTreeMap;

impl Manager {
    /// One autoscaler pass over every function; also repairs drift (failed creations,
    /// lost sandboxes).
    pub(super) fn autoscale(&mut self, now: Millis, effects: &mut Effects) {
        if self.recovering {
            return;
        }
        let lifetime = self.config.report_lifetime.as_millis() as Millis;
        let mut drifted = Vec::new();
        for (name, f) in self.functions.iter_mut() {
            f.loads
                .retain(|_, (at, _)| now.saturating_sub(*at) < lifetime);
            let concurrency: f64 = f.loads.values().map(|(_, c)| c).sum();
            f.window.record(now, concurrency);
            f.window.trim(now, self.config.kpa.stable_window);
            if f.pinned_until.is_some_and(|until| now < until) {
                // A manual scale holds.
            } else {
                f.pinned_until = None;
                let config = f.kpa_config(&self.config.kpa);
                let ready = f.sandboxes.len() as u32;
                let (decision, next) = decide(&config, &f.kpa, &f.window, ready, now);
                f.kpa = next;
                if decision.desired != f.desired {
                    tracing::info!(
                        function = %name,
                        from = f.desired,
                        to = decision.desired,
                        ready,
                        panic = decision.panic,
                        stable = f.window.average(now, config.stable_window),
                        burst = f.window.average(now, config.panic_window),
                        "scaling decision"
                    );
                    f.desired = decision.desired;
                }
            }
            if f.desired != f.sandboxes.len() as u32 + f.creating {
                drifted.push(name.clone());
            }
        }
        drifted.sort();
        for name in drifted {
            self.reconcile(&name, effects);
        }
    }

    /// A gateway holds requests for a function with no sandbox: create one now, without
    /// waiting for the next autoscaler pass.
    pub(super) fn scale_from_zero(&mut self, function: &str, now: Millis, effects: &mut Effects) {
        let Some(f) = self.functions.get_mut(function) else {
            return;
        };
        f.kpa.last_active_ms = Some(now);
        self.keep_alive.used(&mut f.usage, now, 1);
        if f.desired > 0 || !f.sandboxes.is_empty() || f.creating > 0 {
            return;
        }
        f.desired = 1.max(f.spec.scaling.min).min(f.spec.scaling.max);
        tracing::info!(function, "scale from zero");
        self.reconcile(function, effects);
    }

    /// Records a gateway's load report; queued requests of a function at zero scale it up.
    pub(super) fn report_load(
        &mut self,
        gateway: &GatewayId,
        loads: Vec<proto::FunctionLoad>,
        now: Millis,
        effects: &mut Effects,
    ) {
        for load in loads {
            let Some(f) = self.functions.get_mut(&load.function) else {
                continue;
            };
            f.loads
                .insert(gateway.clone(), (now, load.concurrency.max(0.0)));
            if load.concurrency > 0.0 || load.requests > 0 {
                self.keep_alive
                    .used(&mut f.usage, now, load.requests.max(1));
            }
            if load.queued > 0 && f.sandboxes.is_empty() && f.creating == 0 {
                self.scale_from_zero(&load.function, now, effects);
            }
        }
    }

    /// Sets a function's scale by hand, at most its maximum; it holds for the function's
    /// scale-to-zero grace.
    pub(super) fn scale_to(
        &mut self,
        function: &str,
        replicas: u32,
        now: Millis,
        effects: &mut Effects,
    ) {
        let Some(f) = self.functions.get_mut(function) else {
            return;
        };
        // Never past the function's maximum: that is a bound, not a default.
        f.desired = replicas.min(f.spec.scaling.max);
        f.kpa.last_active_ms = Some(now);
        let grace = f.kpa_config(&self.config.kpa).scale_to_zero_grace;
        f.pinned_until = Some(now + grace.as_millis() as Millis);
        self.reconcile(function, effects);
    }

    /// Brings `function` toward its desired count: places and creates what is missing,
    /// drains and deletes what is extra. Does
    /// nothing while a restarted manager is still adopting running sandboxes.
    pub(super) fn reconcile(&mut self, function: &str, effects: &mut Effects) {
        if self.recovering {
            return;
        }
        let keeps_idle = self.keep_alive.keeps_idle();
        if let Some(f) = self.functions.get(function) {
            let have = f.sandboxes.len() as u32 + f.creating;
            if f.desired > have {
                let demand = f.demand(self.config.sandbox_cpu);
                self.make_room(function, f.desired - have, demand, effects);
            }
        }
        let (ids, mut loads) = self.loads();
        let Some(f) = self.functions.get_mut(function) else {
            return;
        };
        let have = f.sandboxes.len() as u32 + f.creating;
        let demand = f.demand(self.config.sandbox_cpu);
        // An idle function keeps one sandbox where the policy caches them.
        let keep = if keeps_idle && f.desired == 0 {
            1.min(have)
        } else {
            f.desired
        };
        if f.desired > have {
            let mut creations: BTreeMap<WorkerId, Vec<SandboxId>> = BTreeMap::new();
            for _ in have..f.desired {
                let Some(i) = self.placement.place(&loads, demand) else {
                    tracing::warn!(function, "no worker has room for another sandbox");
                    break;
                };
                loads[i].cpu_used += demand.cpu;
                loads[i].memory_used += demand.memory;
                let id = SandboxId::from(format!("{function}-{:016x}", self.ids.u64(..)));
                creations.entry(ids[i].clone()).or_default().push(id);
                f.creating += 1;
            }
            let message = f.message();
            for (worker, sandboxes) in creations {
                self.workers
                    .get_mut(&worker)
                    .expect("placed on a known worker")
                    .reserve(demand, sandboxes.len());
                for id in &sandboxes {
                    self.pending.insert(
                        id.clone(),
                        Pending {
                            function: function.to_owned(),
                            version: message.version,
                            worker: worker.clone(),
                            demand,
                            asked_at: self.now,
                        },
                    );
                }
                effects.push(Effect::Create {
                    worker,
                    function: message.clone(),
                    sandboxes,
                });
            }
        } else if keep < have && f.creating == 0 {
            let extra = (have - keep) as usize;
            // Newest first: the oldest are the warmest.
            let mut by_age: Vec<(&SandboxId, u64)> =
                f.sandboxes.iter().map(|(id, p)| (id, p.seq)).collect();
            by_age.sort_by_key(|(_, seq)| std::cmp::Reverse(*seq));
            let victims: Vec<SandboxId> = by_age
                .into_iter()
                .take(extra)
                .map(|(id, _)| id.clone())
                .collect();
            let version = f.version;
            let mut deletions: BTreeMap<WorkerId, Vec<SandboxId>> = BTreeMap::new();
            for id in &victims {
                let placed = f.sandboxes.remove(id).expect("listed above");
                deletions.entry(placed.worker).or_default().push(id.clone());
            }
            effects.push(Self::endpoints_update(
                function,
                version,
                Vec::new(),
                victims,
            ));
            for (worker, sandboxes) in deletions {
                if let Some(w) = self.workers.get_mut(&worker) {
                    for id in &sandboxes {
                        w.release(id, demand);
                    }
                }
                effects.push(Effect::Delete { worker, sandboxes });
            }
            effects.push(Effect::Wake(function.to_owned()));
        }
    }

    /// Frees memory for `count` sandboxes of `demand` by evicting idle sandboxes of other
    /// functions (none in flight, above their minimum, not scaled by hand), in the keep-alive
    /// policy's order, in one batch. An evicted function starts over cold: its windows are
    /// cleared, so the autoscaler does not bring the sandbox straight back.
    fn make_room(&mut self, except: &str, count: u32, demand: Demand, effects: &mut Effects) {
        let (_, loads) = self.loads();
        let Some(need) = shortfall(&loads, u64::from(count), demand) else {
            return;
        };
        let (now, lifetime) = (self.now, self.config.report_lifetime.as_millis() as Millis);
        let idle = |name: &String, f: &super::Function| {
            name.as_str() != except
                && f.creating == 0
                && f.pinned_until.is_none_or(|until| now >= until)
                && !f
                    .loads
                    .values()
                    .any(|(at, c)| now.saturating_sub(*at) < lifetime && *c > 0.0)
        };
        let mut candidates: Vec<(&String, &SandboxId, &Usage)> = self
            .functions
            .iter()
            .filter(|(name, f)| idle(name, f))
            .flat_map(|(name, f)| {
                let spare = f
                    .sandboxes
                    .len()
                    .saturating_sub(f.spec.scaling.min as usize);
                f.sandboxes
                    .keys()
                    .take(spare)
                    .map(move |id| (name, id, &f.usage))
            })
            .collect();
        candidates.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let usages: Vec<&Usage> = candidates.iter().map(|(_, _, u)| *u).collect();
        let chosen = self.keep_alive.victims(&usages, need);
        let victims: Vec<(String, SandboxId)> = chosen
            .into_iter()
            .map(|i| (candidates[i].0.clone(), candidates[i].1.clone()))
            .collect();
        for (name, id) in victims {
            let f = self.functions.get_mut(&name).expect("listed above");
            let placed = f.sandboxes.remove(&id).expect("listed above");
            f.desired = f.sandboxes.len() as u32;
            f.window = ConcurrencyWindow::default();
            f.kpa = KpaState::default();
            let freed = f.demand(self.config.sandbox_cpu);
            tracing::info!(function = %name, sandbox = %id, "keep-alive eviction: its memory is needed");
            self.evictions += 1;
            effects.push(Self::endpoints_update(
                &name,
                f.version,
                Vec::new(),
                vec![id.clone()],
            ));
            if let Some(w) = self.workers.get_mut(&placed.worker) {
                w.release(&id, freed);
            }
            effects.push(Effect::Delete {
                worker: placed.worker,
                sandboxes: vec![id],
            });
            effects.push(Effect::Wake(name));
        }
    }

    /// Records a worker's answer to creations: new sandboxes of current versions on live
    /// workers join their functions and every gateway; others are deleted. A failed
    /// creation is retried by the next autoscaler pass, not here.
    pub(super) fn created(
        &mut self,
        worker: &WorkerId,
        created: Vec<SandboxId>,
        failed: Vec<(SandboxId, String)>,
        effects: &mut Effects,
    ) {
        let mut orphans = Vec::new();
        // Per function: (version, endpoints added).
        let mut added = Added::new();
        let mut touched = std::collections::BTreeSet::new();
        let address = self
            .workers
            .get(worker)
            .filter(|w| w.alive)
            .map(|w| w.record.data_address.clone());
        let outcomes = created
            .into_iter()
            .map(|id| (id, None))
            .chain(failed.into_iter().map(|(id, why)| (id, Some(why))));
        let mut failures: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (id, failure) in outcomes {
            let Some(pending) = self.pending.remove(&id) else {
                // Not asked for (or answered twice): nothing reserved, nothing to join.
                if failure.is_none() {
                    orphans.push(id);
                }
                continue;
            };
            if pending.worker != *worker {
                self.pending.insert(id, pending);
                continue;
            }
            let f = self
                .functions
                .get_mut(&pending.function)
                .filter(|f| f.version == pending.version);
            let w = self.workers.get_mut(worker);
            match (f, failure, &address) {
                (Some(f), None, Some(address)) => {
                    f.creating = f.creating.saturating_sub(1);
                    f.usage
                        .cold_start(self.now.saturating_sub(pending.asked_at) as f64);
                    self.seq += 1;
                    let placed = Placed {
                        worker: worker.clone(),
                        seq: self.seq,
                    };
                    f.sandboxes.insert(id.clone(), placed);
                    if let Some(w) = w {
                        w.sandboxes.insert(id.clone());
                    }
                    touched.insert(pending.function.clone());
                    added
                        .entry(pending.function)
                        .or_insert((pending.version, Vec::new()))
                        .1
                        .push(Self::endpoint(&id, worker, address));
                }
                (f, failure, _) => {
                    if let Some(f) = f {
                        f.creating = f.creating.saturating_sub(1);
                        touched.insert(pending.function.clone());
                    }
                    if let Some(w) = w {
                        w.unreserve(pending.demand, 1);
                    }
                    match failure {
                        Some(why) => {
                            let entry = failures.entry(pending.function).or_insert((0, why));
                            entry.0 += 1;
                        }
                        // Created for a removed or replaced function, or on a worker
                        // declared dead meanwhile.
                        None => orphans.push(id),
                    }
                }
            }
        }
        for (function, (count, first)) in failures {
            tracing::warn!(%worker, %function, count, error = %first, "sandbox creation failed");
        }
        Self::push_added(added, effects);
        if !orphans.is_empty() {
            effects.push(Effect::Delete {
                worker: worker.clone(),
                sandboxes: orphans,
            });
        }
        effects.extend(touched.into_iter().map(Effect::Wake));
    }

    /// Every worker known after a restart has been listed: each function keeps what it
    /// runs (clamped to its bounds) and starts in panic mode, so nothing scales down before
    /// its windows refill; then scaling resumes.
    pub(super) fn recovered(&mut self, now: Millis, effects: &mut Effects) {
        for f in self.functions.values_mut() {
            let ready = f.sandboxes.len() as u32;
            f.desired = ready.clamp(f.spec.scaling.min, f.spec.scaling.max);
            f.kpa = KpaState::recovered(now, ready);
        }
        self.recovering = false;
        let mut names: Vec<String> = self.functions.keys().cloned().collect();
        names.sort();
        for name in names {
            self.reconcile(&name, effects);
        }
    }
}

/// What evictions must free so that `count` more sandboxes of `demand` fit on `loads`:
/// `None` when they fit already. Memory is counted in bytes; CPU (each sandbox's share of a
/// worker's cores) in sandboxes, since every sandbox claims the same share, so a worker whose
/// cores are all claimed makes room by evicting sandboxes even when memory is plentiful.
pub(super) fn shortfall(
    loads: &[crate::placement::WorkerLoad],
    count: u64,
    demand: Demand,
) -> Option<crate::keep_alive::Need> {
    let fits: u64 = loads.iter().map(|l| l.room_for(demand, count)).sum();
    let short = count.checked_sub(fits).filter(|s| *s > 0)?;
    let free_memory: u64 = loads
        .iter()
        .map(|l| l.memory_bytes.saturating_sub(l.memory_used))
        .sum();
    let cpu_room: u64 = loads.iter().map(|l| l.cpu_room_for(demand, count)).sum();
    let mut need = crate::keep_alive::Need {
        memory: count
            .saturating_mul(demand.memory)
            .saturating_sub(free_memory),
        sandboxes: usize::try_from(count.saturating_sub(cpu_room)).unwrap_or(usize::MAX),
    };
    if need == crate::keep_alive::Need::default() {
        // Room enough in sum, but split over workers where no one sandbox fits.
        need.memory = short.saturating_mul(demand.memory);
        need.sandboxes = usize::try_from(short).unwrap_or(usize::MAX);
    }
    Some(need)
}
