use super::{Arrivals, TracedFunction};
use std::time::Duration;

/// One invocation to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// When to send it, from the replay's start.
    pub at: Duration,
    /// Index of the function in the trace.
    pub function: usize,
    /// How long the synthetic function runs, in milliseconds.
    pub duration_ms: u64,
    /// How much memory it touches, in MiB.
    pub memory_mb: u64,
}

/// Every arrival of `functions` in time order. A trace minute lasts `minute` (compress time
/// with less than 60 s); at most `minutes` minutes are replayed. 2019 counts are spread
/// uniformly at random within their minute, as vHive's loader does; durations and memory are
/// sampled from each function's percentiles, capped at `max_duration_ms` and `max_memory_mb`
/// so a replay fits the machine.
pub fn schedule(
    functions: &[TracedFunction],
    minute: Duration,
    minutes: usize,
    max_duration_ms: u64,
    max_memory_mb: u64,
    seed: u64,
) -> Vec<Arrival> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let horizon = minute.mul_f64(minutes as f64);
    let mut out = Vec::new();
    for (index, function) in functions.iter().enumerate() {
        let mut push = |at: Duration, duration_ms: f64, rng: &mut fastrand::Rng| {
            out.push(Arrival {
                at,
                function: index,
                duration_ms: (duration_ms.round() as u64).clamp(1, max_duration_ms),
                memory_mb: (function.memory_mb.sample(rng.f64()).round() as u64).min(max_memory_mb),
            });
        };
        match &function.arrivals {
            Arrivals::PerMinute(counts) => {
                for (m, &count) in counts.iter().take(minutes).enumerate() {
                    for _ in 0..count {
                        let at = minute.mul_f64(m as f64 + rng.f64());
                        let duration = function.duration_ms.sample(rng.f64());
                        push(at, duration, &mut rng);
                    }
                }
            }
            Arrivals::Exact(list) => {
                for &(seconds, duration_ms) in list {
                    let at = minute.mul_f64(seconds / 60.0);
                    if at < horizon {
                        push(at, duration_ms, &mut rng);
                    }
                }
            }
        }
    }
    out.sort_by_key(|a| a.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Percentiles;

    fn function(counts: Vec<u32>) -> TracedFunction {
        TracedFunction {
            id: "f".into(),
            app: "a".into(),
            arrivals: Arrivals::PerMinute(counts),
            duration_ms: Percentiles::constant(40.0),
            memory_mb: Percentiles::constant(16.0),
        }
    }

    #[test]
    fn spreads_each_minutes_count_within_that_minute() {
        let arrivals = schedule(
            &[function(vec![3, 0, 5]), function(vec![1])],
            Duration::from_secs(2),
            10,
            1000,
            64,
            7,
        );
        assert_eq!(arrivals.len(), 9);
        assert!(arrivals.windows(2).all(|w| w[0].at <= w[1].at));
        let third_minute = arrivals
            .iter()
            .filter(|a| a.function == 0 && a.at >= Duration::from_secs(4))
            .count();
        assert_eq!(third_minute, 5);
        assert!(
            arrivals
                .iter()
                .all(|a| a.duration_ms == 40 && a.memory_mb == 16)
        );
    }

    #[test]
    fn honours_the_minute_limit_and_the_caps() {
        let arrivals = schedule(
            &[function(vec![2, 2, 2])],
            Duration::from_secs(1),
            2,
            10,
            8,
            1,
        );
        assert_eq!(arrivals.len(), 4);
        assert!(
            arrivals
                .iter()
                .all(|a| a.duration_ms == 10 && a.memory_mb == 8)
        );
        assert!(arrivals.iter().all(|a| a.at < Duration::from_secs(2)));
    }
}
