//! Memory prediction per function, online (after OFC, which trained one J48 tree per
//! function offline): every invocation's peak memory is observed, keyed by the size bucket of
//! its input (powers of two); the prediction for a bucket is a high quantile of its recent
//! peaks plus a margin. Until the model is mature (OFC's rule: at least 100 runs, and at
//! least 90 % of its recent predictions at or above what was then observed) the booked limit
//! stands. A pure model: observations in, predictions out.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How the model predicts and when it is trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    /// The quantile of a bucket's recent peaks predicted (0.95).
    pub quantile: f64,
    /// Added on top of it, as a fraction (0.1: 10 %).
    pub margin: f64,
    /// Peaks kept per bucket (256).
    pub window: usize,
    /// Peaks a bucket needs before it predicts (5).
    pub min_samples: usize,
    /// Runs before the model is trusted (100).
    pub min_runs: u64,
    /// Share of recent predictions at or above the truth it needs (0.9).
    pub min_coverage: f64,
    /// Predictions the coverage is measured over (100).
    pub coverage_window: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            quantile: 0.95,
            margin: 0.1,
            window: 256,
            min_samples: 5,
            min_runs: 100,
            min_coverage: 0.9,
            coverage_window: 100,
        }
    }
}

/// How often (in observations) a bucket's quantile is computed again: sorting its window on
/// every invocation would cost microseconds on the hot path.
const REFRESH_EVERY: u32 = 16;

/// One input-size bucket: its recent peaks, oldest first, and its prediction.
#[derive(Debug, Clone, Default)]
struct Bucket {
    peaks: VecDeque<u64>,
    predicted: Option<u64>,
    since_refresh: u32,
}

/// One function's model.
#[derive(Debug, Clone, Default)]
pub struct MemoryModel {
    config: ModelConfig,
    /// Input size bucket → its peaks and prediction.
    buckets: HashMap<u32, Bucket>,
    runs: u64,
    /// Whether each recent prediction was at or above the peak then observed.
    covered: VecDeque<bool>,
    last_peak: u64,
}

/// The bucket of an input of `bytes`: 0 for empty, else one more than its highest bit.
pub fn size_bucket(bytes: u64) -> u32 {
    64 - bytes.leading_zeros()
}

impl MemoryModel {
    /// A model predicting as `config` says.
    pub fn new(config: ModelConfig) -> Self {
        MemoryModel {
            config,
            ..MemoryModel::default()
        }
    }

    /// The raw prediction for an input of `input_bytes`, trusted or not; `None` while its
    /// bucket has too few peaks.
    fn raw(&self, input_bytes: u64) -> Option<u64> {
        self.buckets.get(&size_bucket(input_bytes))?.predicted
    }

    /// The quantile of `peaks` plus the margin; `None` with too few.
    fn quantile(config: &ModelConfig, peaks: &VecDeque<u64>) -> Option<u64> {
        if peaks.len() < config.min_samples.max(1) {
            return None;
        }
        let mut sorted: Vec<u64> = peaks.iter().copied().collect();
        sorted.sort_unstable();
        let rank =
            ((sorted.len() as f64 * config.quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
        Some((sorted[rank] as f64 * (1.0 + config.margin)).ceil() as u64)
    }

    /// Records one invocation: its input size and the peak memory it used.
    pub fn observe(&mut self, input_bytes: u64, peak_bytes: u64) {
        if let Some(predicted) = self.raw(input_bytes) {
            self.covered.push_back(predicted >= peak_bytes);
            if self.covered.len() > self.config.coverage_window {
                self.covered.pop_front();
            }
        }
        let bucket = self.buckets.entry(size_bucket(input_bytes)).or_default();
        bucket.peaks.push_back(peak_bytes);
        if bucket.peaks.len() > self.config.window {
            bucket.peaks.pop_front();
        }
        bucket.since_refresh += 1;
        // Young buckets are refreshed at every peak, then every REFRESH_EVERY; a peak above
        // the prediction refreshes at once, so a growing function is caught up quickly.
        let young = bucket.peaks.len() <= self.config.min_samples.max(1) * 4;
        let above = bucket.predicted.is_some_and(|p| peak_bytes > p);
        if young || above || bucket.since_refresh >= REFRESH_EVERY {
            bucket.predicted = Self::quantile(&self.config, &bucket.peaks);
            bucket.since_refresh = 0;
        }
        self.runs += 1;
        self.last_peak = peak_bytes;
    }

    /// The share of recent predictions at or above the truth (1 with none yet).
    pub fn coverage(&self) -> f64 {
        match self.covered.len() {
            0 => 1.0,
            n => self.covered.iter().filter(|c| **c).count() as f64 / n as f64,
        }
    }

    /// Whether predictions are trusted over the booked limit.
    pub fn mature(&self) -> bool {
        self.runs >= self.config.min_runs
            && !self.covered.is_empty()
            && self.coverage() >= self.config.min_coverage
    }

    /// What an invocation with `input_bytes` of input is expected to need: the prediction
    /// once mature (never above `booked`), else `booked`.
    pub fn predict(&self, input_bytes: u64, booked: u64) -> u64 {
        match (self.mature(), self.raw(input_bytes)) {
            (true, Some(predicted)) => predicted.min(booked),
            _ => booked,
        }
    }

    /// What a resident sandbox, whose next input is unknown, is expected to need: the largest
    /// bucket prediction once mature, else `booked`.
    pub fn resident(&self, booked: u64) -> u64 {
        if !self.mature() {
            return booked;
        }
        let largest = self
            .buckets
            .keys()
            .filter_map(|bucket| {
                let input = if *bucket == 0 {
                    0
                } else {
                    1u64 << (bucket - 1)
                };
                self.raw(input)
            })
            .max();
        largest.map_or(booked, |p| p.min(booked))
    }

    /// Invocations observed.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// The last peak observed.
    pub fn last_peak(&self) -> u64 {
        self.last_peak
    }
}

/// What `/system/cache` and the metrics show of one function's model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelReport {
    /// The function.
    pub function: String,
    /// Invocations observed.
    pub runs: u64,
    /// Whether predictions are trusted.
    pub mature: bool,
    /// Share of recent predictions at or above the truth.
    pub coverage: f64,
    /// What a resident sandbox is expected to need.
    pub predicted_bytes: u64,
    /// The booked limit.
    pub booked_bytes: u64,
    /// The last peak observed.
    pub last_peak_bytes: u64,
}

/// One function's model as its runtime holds it: each invocation is recorded under this
/// function's own lock, without a lookup in the node's registry.
pub struct FunctionModel {
    booked: u64,
    model: Mutex<MemoryModel>,
}

impl std::fmt::Debug for FunctionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionModel")
            .field("booked", &self.booked)
            .finish_non_exhaustive()
    }
}

impl FunctionModel {
    /// Records one invocation: its input size and its peak memory.
    pub fn observe(&self, input_bytes: u64, peak_bytes: u64) {
        self.model
            .lock()
            .expect("model")
            .observe(input_bytes, peak_bytes);
    }
}

/// Every function's model on a node; cheap to clone.
#[derive(Clone, Default)]
pub struct Predictions {
    models: Arc<Mutex<HashMap<String, Arc<FunctionModel>>>>,
}

impl Predictions {
    /// A fresh model for `function`, which books `booked` bytes: a new deployment is new code,
    /// so it replaces what the previous one learnt.
    pub fn model(&self, function: &str, booked: u64) -> Arc<FunctionModel> {
        let model = Arc::new(FunctionModel {
            booked,
            model: Mutex::new(MemoryModel::new(ModelConfig::default())),
        });
        self.models
            .lock()
            .expect("models")
            .insert(function.to_string(), model.clone());
        model
    }

    /// What a resident sandbox of `function` (booked `booked`) is expected to need.
    pub fn resident(&self, function: &str, booked: u64) -> u64 {
        let model = self.models.lock().expect("models").get(function).cloned();
        model.map_or(booked, |m| m.model.lock().expect("model").resident(booked))
    }

    /// Every model, by function name.
    pub fn report(&self) -> Vec<ModelReport> {
        let models: Vec<(String, Arc<FunctionModel>)> = self
            .models
            .lock()
            .expect("models")
            .iter()
            .map(|(name, model)| (name.clone(), model.clone()))
            .collect();
        let mut reports: Vec<ModelReport> = models
            .into_iter()
            .map(|(function, held)| {
                let model = held.model.lock().expect("model");
                ModelReport {
                    function,
                    runs: model.runs(),
                    mature: model.mature(),
                    coverage: model.coverage(),
                    predicted_bytes: model.resident(held.booked),
                    booked_bytes: held.booked,
                    last_peak_bytes: model.last_peak(),
                }
            })
            .collect();
        reports.sort_by(|a, b| a.function.cmp(&b.function));
        reports
    }
}

/// The cache's capacity when sandboxes are expected to need `predicted` of a `budget`: what
/// is left, never more than `ceiling` (the configured cache size).
pub fn elastic_capacity(budget: u64, predicted: u64, ceiling: u64) -> u64 {
    budget.saturating_sub(predicted).min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn inputs_fall_into_power_of_two_buckets() {
        let cases = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (1023, 10),
            (1024, 11),
        ];
        for (bytes, bucket) in cases {
            assert_eq!(size_bucket(bytes), bucket, "{bytes}");
        }
    }

    #[test]
    fn the_booked_limit_stands_until_the_model_is_mature() {
        let mut model = MemoryModel::new(ModelConfig::default());
        // Memory twice the input plus 1 MiB, inputs of 1 KiB and 1 MiB.
        for i in 0..99u64 {
            let input = if i % 2 == 0 { 1024 } else { MIB };
            model.observe(input, 2 * input + MIB);
            assert_eq!(
                model.predict(input, 128 * MIB),
                128 * MIB,
                "run {i}: not mature yet"
            );
        }
        model.observe(1024, 2 * 1024 + MIB);
        assert!(model.mature());
        // Each bucket predicts its own peak plus 10 %.
        let small = model.predict(1024, 128 * MIB);
        let large = model.predict(MIB, 128 * MIB);
        assert_eq!(small, ((2 * 1024 + MIB) as f64 * 1.1).ceil() as u64);
        assert_eq!(large, (3.0 * MIB as f64 * 1.1).ceil() as u64);
        // A resident sandbox is expected to need its largest bucket's; never above the limit.
        assert_eq!(model.resident(128 * MIB), large);
        assert_eq!(model.resident(2 * MIB), 2 * MIB);
        // An input size never seen: the limit.
        assert_eq!(model.predict(64 * MIB, 128 * MIB), 128 * MIB);
    }

    #[test]
    fn a_model_that_under_predicts_is_not_trusted() {
        let mut model = MemoryModel::new(ModelConfig::default());
        // Peaks that grow without end: every prediction falls short.
        for i in 0..200u64 {
            model.observe(1024, MIB * (i + 1));
        }
        assert!(model.coverage() < 0.9, "{}", model.coverage());
        assert!(!model.mature());
        assert_eq!(model.predict(1024, 512 * MIB), 512 * MIB);
    }

    #[test]
    fn the_cache_gets_what_predicted_sandboxes_leave() {
        // (budget, predicted, ceiling, capacity).
        let cases = [
            (2048, 512, 1024, 1024),
            (2048, 1536, 1024, 512),
            (2048, 4096, 1024, 0),
            (0, 0, 1024, 0),
        ];
        for (budget, predicted, ceiling, capacity) in cases {
            assert_eq!(elastic_capacity(budget, predicted, ceiling), capacity);
        }
    }
}
