use anyhow::Context;
use std::fmt::Write as _;
use std::path::Path;

/// Parameters of a synthetic trace in the Azure 2019 format. Defaults give Azure-like skew:
/// per-function rates log-uniform over four orders of magnitude, log-normal durations.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Functions in the trace. Default 50.
    pub functions: usize,
    /// Minutes of counts. Default 10.
    pub minutes: usize,
    /// Lowest mean invocations per minute of a function. Default 0.1.
    pub min_rate: f64,
    /// Highest mean invocations per minute of a function. Default 1000.
    pub max_rate: f64,
    /// Median execution time across functions, ms. Default 50.
    pub median_duration_ms: f64,
    /// Spread (σ of the log) of execution times across functions. Default 1.0.
    pub duration_sigma: f64,
    /// Random seed; the same seed writes the same trace. Default 1.
    pub seed: u64,
    /// Lowest median allocated memory of a function, MiB. Default 128.
    pub min_memory_mb: f64,
    /// Highest; each function's median is log-uniform between the two (as Azure's apps
    /// differ), so size-aware keep-alive has sizes to weigh. Default 128: every function alike.
    pub max_memory_mb: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            functions: 50,
            minutes: 10,
            min_rate: 0.1,
            max_rate: 1000.0,
            median_duration_ms: 50.0,
            duration_sigma: 1.0,
            seed: 1,
            min_memory_mb: 128.0,
            max_memory_mb: 128.0,
        }
    }
}

/// Standard-normal quantiles of the percentiles the 2019 format lists (0 and 100 taken at
/// ±3.09, the 0.1 % tails).
const Z: [f64; 7] = [-3.09, -2.326, -0.674, 0.0, 0.674, 2.326, 3.09];

fn hash(rng: &mut fastrand::Rng) -> String {
    (0..4).map(|_| format!("{:016x}", rng.u64(..))).collect()
}

/// A Poisson-distributed count with mean `lambda`.
fn poisson(rng: &mut fastrand::Rng, lambda: f64) -> u32 {
    if lambda > 50.0 {
        // Normal approximation: exact sampling is slow for large means and the shape is close.
        let normal =
            (-2.0 * (1.0 - rng.f64()).ln()).sqrt() * (2.0 * std::f64::consts::PI * rng.f64()).cos();
        return (lambda + lambda.sqrt() * normal).round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let (mut count, mut product) = (0, rng.f64());
    while product > limit {
        count += 1;
        product *= rng.f64();
    }
    count
}

/// Writes `invocations.csv`, `durations.csv` and `memory.csv` into `dir`.
pub fn write_synthetic(dir: &Path, config: &SynthConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let minutes: Vec<String> = (1..=config.minutes).map(|m| m.to_string()).collect();
    let mut invocations = format!(
        "HashOwner,HashApp,HashFunction,Trigger,{}\n",
        minutes.join(",")
    );
    let mut durations = String::from(
        "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\n",
    );
    let mut memory = String::from(
        "HashOwner,HashApp,HashFunction,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\n",
    );
    let (log_min, log_max) = (config.min_rate.ln(), config.max_rate.ln());
    for _ in 0..config.functions {
        let (owner, app, function) = (hash(&mut rng), hash(&mut rng), hash(&mut rng));
        let rate = (log_min + rng.f64() * (log_max - log_min)).exp();
        let counts: Vec<u32> = (0..config.minutes)
            .map(|_| poisson(&mut rng, rate))
            .collect();
        let total: u32 = counts.iter().sum();
        let trigger = if rng.f64() < 0.55 { "http" } else { "queue" };
        let counts_text: Vec<String> = counts.iter().map(u32::to_string).collect();
        let _ = writeln!(
            invocations,
            "{owner},{app},{function},{trigger},{}",
            counts_text.join(",")
        );
        // This function's own median, then a narrower spread around it.
        let median =
            config.median_duration_ms * (config.duration_sigma * (Z[rng.usize(1..6)] / 2.0)).exp();
        let d = Z.map(|z| (median * (0.5 * z).exp()).max(1.0));
        let _ = writeln!(
            durations,
            "{owner},{app},{function},{:.1},{total},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1}",
            median, d[0], d[6], d[0], d[1], d[2], d[3], d[4], d[5], d[6]
        );
        // Drawn only when sizes differ, so a trace of equal sizes is what it always was.
        let median_mb = match config.max_memory_mb > config.min_memory_mb {
            true => {
                let (low, high) = (config.min_memory_mb.ln(), config.max_memory_mb.ln());
                (low + rng.f64() * (high - low)).exp()
            }
            false => config.min_memory_mb,
        };
        let m = [0.9, 0.95, 0.98, 1.0, 1.02, 1.08, 1.12, 1.2].map(|f| (median_mb * f) as u32);
        let _ = writeln!(
            memory,
            "{owner},{app},{function},{total},{},{},{},{},{},{},{},{},{}",
            median_mb as u32, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
        );
    }
    std::fs::write(dir.join("invocations.csv"), invocations)?;
    std::fs::write(dir.join("durations.csv"), durations)?;
    std::fs::write(dir.join("memory.csv"), memory)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Arrivals, read_2019};

    #[test]
    fn a_synthetic_trace_reads_back_with_skewed_rates() {
        let dir = tempfile::tempdir().unwrap();
        let config = SynthConfig {
            functions: 40,
            minutes: 5,
            ..SynthConfig::default()
        };
        write_synthetic(dir.path(), &config).unwrap();
        let functions = read_2019(dir.path()).unwrap();
        assert_eq!(functions.len(), 40);
        let totals: Vec<u32> = functions
            .iter()
            .map(|f| match &f.arrivals {
                Arrivals::PerMinute(c) => c.iter().sum(),
                Arrivals::Exact(_) => 0,
            })
            .collect();
        let (min, max) = (*totals.iter().min().unwrap(), *totals.iter().max().unwrap());
        assert!(
            max >= 100 * min.max(1),
            "rates span orders of magnitude: {min}..{max}"
        );
        // The same seed writes the same trace.
        let again = tempfile::tempdir().unwrap();
        write_synthetic(again.path(), &config).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("invocations.csv")).unwrap(),
            std::fs::read(again.path().join("invocations.csv")).unwrap()
        );
    }

    #[test]
    fn sizes_are_alike_unless_a_range_is_asked_for() {
        let medians = |config: &SynthConfig| {
            let dir = tempfile::tempdir().unwrap();
            write_synthetic(dir.path(), config).unwrap();
            read_2019(dir.path())
                .unwrap()
                .iter()
                .map(|f| f.memory_mb.values[3])
                .collect::<Vec<f64>>()
        };
        let alike = medians(&SynthConfig::default());
        assert!(alike.iter().all(|m| *m == 128.0), "{alike:?}");
        let spread = medians(&SynthConfig {
            min_memory_mb: 128.0,
            max_memory_mb: 1024.0,
            ..SynthConfig::default()
        });
        assert!(
            spread.iter().all(|m| (128.0..=1024.0).contains(m)),
            "{spread:?}"
        );
        let (low, high) = spread
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), m| (l.min(*m), h.max(*m)));
        assert!(high >= 4.0 * low, "sizes span the range: {low}..{high}");
    }
}
