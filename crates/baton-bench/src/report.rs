//! What a run leaves behind: a terminal summary, JSON with every figure, a CSV time series and
//! SVG plots (latency over time, latency CDF, throughput).

use crate::load::LoadReport;
use crate::svg::{Series, line_chart};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Latency figures in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// Every figure of one load run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What was loaded.
    pub label: String,
    /// Answered requests in the measured part.
    pub requests: u64,
    /// Answered requests per second.
    pub throughput_rps: f64,
    /// Latency of answered requests.
    pub latency: Latency,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests without an answer, by cause.
    pub errors: BTreeMap<String, u64>,
    /// Open-loop arrivals not sent because every connection was busy.
    pub dropped: u64,
    /// Seconds measured.
    pub seconds: f64,
}

impl Summary {
    /// Summarises `report`.
    pub fn of(label: &str, report: &LoadReport) -> Self {
        let h = &report.latency;
        let q = |quantile: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(quantile)
            }
        };
        Summary {
            label: label.to_owned(),
            requests: h.len(),
            throughput_rps: report.throughput(),
            latency: Latency {
                p50_us: q(0.5),
                p90_us: q(0.9),
                p99_us: q(0.99),
                p999_us: q(0.999),
                max_us: if h.is_empty() { 0 } else { h.max() },
                mean_us: if h.is_empty() { 0.0 } else { h.mean() },
            },
            statuses: report.statuses.clone(),
            errors: report.errors.clone(),
            dropped: report.dropped,
            seconds: report.elapsed.as_secs_f64(),
        }
    }

    /// Several lines for a person.
    pub fn text(&self) -> String {
        let l = &self.latency;
        let mut out = format!(
            "{}: {} requests in {:.1} s, {:.0} req/s\n  latency p50 {} p90 {} p99 {} p99.9 {} max {}\n",
            self.label,
            self.requests,
            self.seconds,
            self.throughput_rps,
            micros(l.p50_us),
            micros(l.p90_us),
            micros(l.p99_us),
            micros(l.p999_us),
            micros(l.max_us)
        );
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(out, "  status {}", statuses.join(", "));
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(e, n)| format!("{n}× {e}"))
                .collect();
            let _ = writeln!(out, "  no answer: {}", errors.join("; "));
        }
        if self.dropped > 0 {
            let _ = writeln!(
                out,
                "  dropped {} arrivals (all connections busy: the target fell behind the rate)",
                self.dropped
            );
        }
        out
    }
}

/// `1.2 ms`, `850 µs`, `2.1 s`.
pub fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// One row per second: completed requests and latency percentiles.
pub fn time_series(report: &LoadReport) -> Vec<(u32, u64, u64, u64)> {
    let mut rows = Vec::new();
    let mut index = 0;
    let samples = &report.samples;
    while index < samples.len() {
        let second = samples[index].at_ms / 1000;
        let mut latencies: Vec<u32> = Vec::new();
        while index < samples.len() && samples[index].at_ms / 1000 == second {
            latencies.push(samples[index].latency_us);
            index += 1;
        }
        latencies.sort_unstable();
        let pick = |q: f64| u64::from(latencies[((latencies.len() - 1) as f64 * q) as usize]);
        rows.push((second, latencies.len() as u64, pick(0.5), pick(0.99)));
    }
    rows
}

/// Writes `<stem>.json`, `<stem>.csv` and `<stem>-{latency,cdf,throughput}.svg` into `dir`.
pub fn write_files(
    dir: &Path,
    stem: &str,
    summary: &Summary,
    report: &LoadReport,
) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: String, text: String| -> std::io::Result<()> {
        std::fs::write(dir.join(&name), text)?;
        written.push(dir.join(name).display().to_string());
        Ok(())
    };
    write(
        format!("{stem}.json"),
        serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?,
    )?;
    let rows = time_series(report);
    let mut csv = String::from("second,requests,p50_us,p99_us\n");
    for (second, requests, p50, p99) in &rows {
        let _ = writeln!(csv, "{second},{requests},{p50},{p99}");
    }
    write(format!("{stem}.csv"), csv)?;
    let p50: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (f64::from(r.0), r.2 as f64 / 1e3))
        .collect();
    let p99: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (f64::from(r.0), r.3 as f64 / 1e3))
        .collect();
    write(
        format!("{stem}-latency.svg"),
        line_chart(
            &format!("{} — latency over time", summary.label),
            "second",
            "ms",
            &[Series::new("p50", p50), Series::new("p99", p99)],
        ),
    )?;
    let throughput: Vec<(f64, f64)> = rows.iter().map(|r| (f64::from(r.0), r.1 as f64)).collect();
    write(
        format!("{stem}-throughput.svg"),
        line_chart(
            &format!("{} — throughput", summary.label),
            "second",
            "requests/s",
            &[Series::new("completed", throughput)],
        ),
    )?;
    let cdf: Vec<(f64, f64)> = report
        .latency
        .iter_quantiles(4)
        .map(|v| {
            (
                v.value_iterated_to() as f64 / 1e3,
                v.quantile_iterated_to() * 100.0,
            )
        })
        .collect();
    write(
        format!("{stem}-cdf.svg"),
        line_chart(
            &format!("{} — latency CDF", summary.label),
            "ms",
            "% of requests",
            &[Series::new("cdf", cdf)],
        ),
    )?;
    Ok(written)
}
