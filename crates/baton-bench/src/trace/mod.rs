//! Trace replay: the Azure Functions traces (2019 per-minute counts with duration and memory
//! percentiles; 2021 per-invocation rows), a generator of synthetic traces in the 2019 format,
//! and the arrival schedule a replay sends.

mod azure;
mod replay;
mod schedule;
mod synth;

pub use azure::{Arrivals, Percentiles, TracedFunction, read_2019, read_2021};
pub use replay::{FunctionSummary, Outcome, ReplaySummary, replay, summarise};
pub use schedule::{Arrival, schedule};
pub use synth::{SynthConfig, write_synthetic};
