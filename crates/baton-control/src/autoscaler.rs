//! The autoscaler: Knative's KPA as a pure function from observed concurrency to a desired
//! number of sandboxes.
//!
//! The input is in-flight concurrency (requests running plus requests queued at gateways),
//! summed over gateways and recorded per second in a [`ConcurrencyWindow`]. Each decision
//! averages it over a stable window (default 60 s) and a panic window (default 6 s):
//!
//! - desired = ⌈average / target⌉, where target is the concurrency one sandbox should carry;
//! - a step is bounded by the scale rates: at most `max_scale_up_rate × ready` and at least
//!   `ready / max_scale_down_rate`;
//! - when the panic-window desire reaches `panic_threshold × ready`, the function panics: it
//!   follows the panic window and never scales down, until a whole stable window passes
//!   without another trigger;
//! - a function with no sandbox and any demand scales from zero at once (no averaging);
//! - it goes back to zero only after `scale_to_zero_grace` without demand;
//! - the result is clamped to `[min, max]`.
//!
//! Nothing here reads a clock or does I/O: time comes in as milliseconds, so the decision
//! is reproducible and property-tested.

use std::collections::VecDeque;
use std::time::Duration;

/// How one function scales; the defaults are Knative's KPA defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct KpaConfig {
    /// Concurrency one sandbox should carry (Knative: container concurrency × target %).
    pub target: f64,
    /// Averaging window for normal decisions.
    pub stable_window: Duration,
    /// Averaging window for bursts.
    pub panic_window: Duration,
    /// Panic when the panic-window desire is at least this multiple of ready sandboxes.
    pub panic_threshold: f64,
    /// Largest growth factor per decision.
    pub max_scale_up_rate: f64,
    /// Largest shrink factor per decision.
    pub max_scale_down_rate: f64,
    /// Fewest sandboxes.
    pub min: u32,
    /// Most sandboxes.
    pub max: u32,
    /// Idle time before a function goes to zero.
    pub scale_to_zero_grace: Duration,
}

impl Default for KpaConfig {
    fn default() -> Self {
        KpaConfig {
            target: 70.0,
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
            panic_threshold: 2.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            min: 0,
            max: u32::MAX,
            scale_to_zero_grace: Duration::from_secs(30),
        }
    }
}

/// Concurrency samples in one-second buckets, kept for one stable window. A second with no
/// report counts as zero: gateways report only functions with traffic.
#[derive(Debug, Clone, Default)]
pub struct ConcurrencyWindow {
    /// (second, highest concurrency reported in it per gateway, summed)
    buckets: VecDeque<(u64, f64)>,
    /// The first second anything was recorded: windows shorter than the history average
    /// over the history only, so a new function is not diluted by seconds it did not exist.
    first_second: Option<u64>,
}

impl ConcurrencyWindow {
    /// Records `concurrency` observed at `now_ms`; several records in one second add up
    /// (one per gateway).
    pub fn record(&mut self, now_ms: u64, concurrency: f64) {
        let second = now_ms / 1000;
        self.first_second.get_or_insert(second);
        match self.buckets.back_mut() {
            Some((s, value)) if *s == second => *value += concurrency,
            _ => self.buckets.push_back((second, concurrency)),
        }
    }

    /// Drops buckets older than `keep`.
    pub fn trim(&mut self, now_ms: u64, keep: Duration) {
        let oldest = (now_ms / 1000).saturating_sub(keep.as_secs());
        while self.buckets.front().is_some_and(|(s, _)| *s < oldest) {
            self.buckets.pop_front();
        }
    }

    /// Mean concurrency over the last `width` (whole seconds, at least one).
    pub fn average(&self, now_ms: u64, width: Duration) -> f64 {
        let now = now_ms / 1000;
        let Some(first) = self.first_second else {
            return 0.0;
        };
        let width = width.as_secs().max(1);
        let start = now.saturating_sub(width - 1).max(first);
        if start > now {
            return 0.0;
        }
        let sum: f64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s >= start && *s <= now)
            .map(|(_, v)| v)
            .sum();
        sum / (now - start + 1) as f64
    }

    /// The time of the latest second with non-zero demand, in milliseconds.
    pub fn last_active_ms(&self) -> Option<u64> {
        self.buckets
            .iter()
            .rev()
            .find(|(_, v)| *v > 0.0)
            .map(|(s, _)| s * 1000)
    }
}

/// What the autoscaler remembers between decisions of one function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpaState {
    /// When the current panic began (or was last re-triggered).
    pub panic_since_ms: Option<u64>,
    /// The panic's highest desire: in panic the function never goes below it.
    pub panic_desired: u32,
    /// Last time demand was seen, for the scale-to-zero grace period.
    pub last_active_ms: Option<u64>,
}

impl KpaState {
    /// A state that starts in panic, for functions recovered after a control-plane
    /// restart: nothing scales down until the windows have refilled (as Dirigent does).
    pub fn recovered(now_ms: u64, ready: u32) -> Self {
        KpaState {
            panic_since_ms: Some(now_ms),
            panic_desired: ready,
            last_active_ms: Some(now_ms),
        }
    }
}

/// One decision: the desired scale and whether the function is panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Sandboxes the function should have.
    pub desired: u32,
    /// Whether the decision follows the panic window.
    pub panic: bool,
}

/// Decides the scale of one function at `now_ms`, given `ready` sandboxes; returns the
/// decision and the state for the next one.
pub fn decide(
    config: &KpaConfig,
    state: &KpaState,
    window: &ConcurrencyWindow,
    ready: u32,
    now_ms: u64,
) -> (Decision, KpaState) {
    let mut next = state.clone();
    let target = config.target.max(0.01);
    let stable = window.average(now_ms, config.stable_window);
    let burst = window.average(now_ms, config.panic_window);
    if let Some(active) = window.last_active_ms() {
        next.last_active_ms = Some(next.last_active_ms.map_or(active, |t| t.max(active)));
    }
    let want_stable = (stable / target).ceil();
    let want_panic = (burst / target).ceil();

    let desired = if ready == 0 {
        // Scale from zero: any demand gets sandboxes now, sized by the burst.
        next.panic_since_ms = None;
        next.panic_desired = 0;
        if burst > 0.0 || stable > 0.0 {
            want_panic.max(want_stable).max(1.0)
        } else {
            0.0
        }
    } else {
        let ready_f = ready as f64;
        let up_bound = (config.max_scale_up_rate * ready_f).ceil();
        let down_bound = (ready_f / config.max_scale_down_rate.max(1.0)).floor();
        let bounded = |d: f64| d.clamp(down_bound, up_bound.max(down_bound));
        let want_stable = bounded(want_stable);
        let want_panic = bounded(want_panic);
        if want_panic / ready_f >= config.panic_threshold {
            next.panic_since_ms = Some(now_ms);
        } else if let Some(since) = next.panic_since_ms
            && now_ms.saturating_sub(since) >= config.stable_window.as_millis() as u64
        {
            next.panic_since_ms = None;
            next.panic_desired = 0;
        }
        if next.panic_since_ms.is_some() {
            let d = want_panic.max(next.panic_desired as f64).max(ready_f);
            next.panic_desired = d.min(u32::MAX as f64) as u32;
            d
        } else {
            want_stable
        }
    };

    let mut desired = desired.min(u32::MAX as f64) as u32;
    // Within the grace a function keeps one sandbox, also while its first is still being
    // created (ready 0 after a scale from zero whose request ended before any load report):
    // otherwise that sandbox would be deleted as soon as it came up.
    if desired == 0 && (ready > 0 || next.last_active_ms.is_some()) {
        let idle_since = next.last_active_ms.unwrap_or(0);
        if now_ms.saturating_sub(idle_since) < config.scale_to_zero_grace.as_millis() as u64 {
            desired = 1;
        }
    }
    let desired = desired.clamp(config.min, config.max.max(config.min));
    let panic = next.panic_since_ms.is_some();
    (Decision { desired, panic }, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> KpaConfig {
        KpaConfig {
            target: 10.0,
            ..KpaConfig::default()
        }
    }

    fn steady(concurrency: f64, seconds: u64) -> ConcurrencyWindow {
        let mut w = ConcurrencyWindow::default();
        for s in 0..seconds {
            w.record(s * 1000, concurrency);
        }
        w
    }

    #[test]
    fn steady_load_asks_for_load_over_target() {
        let w = steady(45.0, 60);
        let (d, _) = decide(&config(), &KpaState::default(), &w, 5, 59_000);
        assert_eq!(
            d,
            Decision {
                desired: 5,
                panic: false
            }
        );
    }

    #[test]
    fn demand_at_zero_scales_up_at_once() {
        let mut w = ConcurrencyWindow::default();
        w.record(100_000, 1.0);
        let (d, _) = decide(&config(), &KpaState::default(), &w, 0, 100_000);
        assert_eq!(d.desired, 1);
        let mut w = ConcurrencyWindow::default();
        w.record(100_000, 35.0);
        let (d, _) = decide(&config(), &KpaState::default(), &w, 0, 100_000);
        assert_eq!(d.desired, 4, "sized by the burst");
    }

    #[test]
    fn a_burst_panics_and_panic_never_scales_down() {
        let mut w = steady(10.0, 60);
        for s in 60..63 {
            w.record(s * 1000, 200.0);
        }
        let (d, state) = decide(&config(), &KpaState::default(), &w, 1, 62_000);
        assert!(d.panic);
        assert!(d.desired >= 10, "follows the panic window: {d:?}");
        // The burst ends: still panicking, and holding the panic's scale.
        for s in 63..70 {
            w.record(s * 1000, 0.0);
        }
        let (d2, state) = decide(&config(), &state, &w, d.desired, 69_000);
        assert!(d2.panic);
        assert_eq!(d2.desired, d.desired);
        // A stable window later the panic is over and it scales down (by at most half).
        let (d3, _) = decide(&config(), &state, &w, d.desired, 62_000 + 60_000);
        assert!(!d3.panic);
        assert!(
            d3.desired < d.desired && d3.desired >= d.desired / 2,
            "{d3:?}"
        );
    }

    #[test]
    fn scale_to_zero_waits_for_the_grace_period() {
        let mut w = steady(5.0, 10);
        w.trim(10_000, Duration::from_secs(60));
        let state = KpaState::default();
        let (_, state) = decide(&config(), &state, &w, 1, 10_000);
        let late = 9_000 + 5_000;
        let mut idle = w.clone();
        idle.trim(200_000, Duration::from_secs(60));
        let (d, state) = decide(&config(), &state, &idle, 1, late);
        assert_eq!(d.desired, 1, "inside the grace period");
        let (d, _) = decide(&config(), &state, &idle, 1, 9_000 + 30_000);
        assert_eq!(d.desired, 0);
    }

    #[test]
    fn a_first_sandbox_still_being_created_is_kept_through_the_grace() {
        // Scaled from zero at 1 s; the request ended before any load report, and the pass
        // comes while the sandbox is created (ready 0): it stays wanted, until the grace ends.
        let state = KpaState {
            last_active_ms: Some(1_000),
            ..KpaState::default()
        };
        let empty = ConcurrencyWindow::default();
        let (d, state) = decide(&config(), &state, &empty, 0, 1_500);
        assert_eq!(d.desired, 1);
        let (d, _) = decide(&config(), &state, &empty, 0, 1_000 + 30_000);
        assert_eq!(d.desired, 0);
        // Never active: nothing.
        let (d, _) = decide(&config(), &KpaState::default(), &empty, 0, 1_500);
        assert_eq!(d.desired, 0);
    }

    #[test]
    fn min_and_max_bound_every_decision() {
        let c = KpaConfig {
            min: 2,
            max: 3,
            ..config()
        };
        let (d, _) = decide(&c, &KpaState::default(), &steady(1000.0, 60), 3, 59_000);
        assert_eq!(d.desired, 3);
        let (d, _) = decide(
            &c,
            &KpaState::default(),
            &ConcurrencyWindow::default(),
            0,
            0,
        );
        assert_eq!(d.desired, 2);
    }

    #[test]
    fn a_recovered_function_does_not_scale_down_while_its_window_refills() {
        let w = ConcurrencyWindow::default();
        let state = KpaState::recovered(1_000_000, 8);
        let (d, _) = decide(&config(), &state, &w, 8, 1_010_000);
        assert_eq!(
            d,
            Decision {
                desired: 8,
                panic: true
            }
        );
    }

    proptest! {
        #[test]
        fn decisions_respect_bounds_and_rates(
            samples in proptest::collection::vec(0.0f64..10_000.0, 1..120),
            ready in 0u32..500,
            min in 0u32..5,
            extra in 1u32..1000,
            down_rate in 1.0f64..10.0,
            up_rate in 1.0f64..1000.0,
            panic_since in proptest::option::of(0u64..120_000),
        ) {
            let c = KpaConfig {
                min, max: min + extra, max_scale_down_rate: down_rate, max_scale_up_rate: up_rate,
                ..config()
            };
            let mut w = ConcurrencyWindow::default();
            for (s, v) in samples.iter().enumerate() {
                w.record(s as u64 * 1000, *v);
            }
            let now = (samples.len() as u64 - 1) * 1000;
            let state = KpaState { panic_since_ms: panic_since, ..KpaState::default() };
            let (d, next) = decide(&c, &state, &w, ready, now);
            prop_assert!(d.desired >= c.min && d.desired <= c.max);
            if ready > 0 {
                let up = (up_rate * ready as f64).ceil() as u32;
                prop_assert!(d.desired <= up.max(c.min).max(ready), "{d:?} up bound {up}");
                let down = (ready as f64 / down_rate).floor() as u32;
                prop_assert!(d.desired >= down.min(c.max), "{d:?} down bound {down}");
            }
            if d.panic && ready > 0 {
                prop_assert!(d.desired >= ready.min(c.max), "panic never scales down");
            }
            // The same inputs give the same decision.
            prop_assert_eq!(decide(&c, &state, &w, ready, now), (d, next));
        }

        #[test]
        fn no_scale_to_zero_inside_the_grace_period(
            active_for in 1u64..60, idle_for in 0u64..29, ready in 1u32..50,
        ) {
            let mut w = ConcurrencyWindow::default();
            for s in 0..active_for {
                w.record(s * 1000, 3.0);
            }
            let last = (active_for - 1) * 1000;
            let (_, state) = decide(&config(), &KpaState::default(), &w, ready, last);
            let now = last + idle_for * 1000;
            w.trim(now + 1_000_000, Duration::from_secs(1));
            let (d, _) = decide(&config(), &state, &w, ready, now);
            prop_assert!(d.desired >= 1);
        }
    }
}
