//! The federation's Prometheus metrics: requests forwarded to and received from each peer per
//! function (by status), refusals by reason, and the rounds' grants and headroom.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Most series one counter keeps: label values come from peers and strangers (a site id per
/// refused key), so past this new ones are counted under `other` values instead.
const MAX_SERIES: usize = 4096;

/// Counters keyed by their label values.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<Vec<String>, u64>>);

impl Counters {
    fn add(&self, labels: &[&str]) {
        let mut counters = self.0.lock().unwrap();
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let key = match counters.len() < MAX_SERIES || counters.contains_key(&key) {
            true => key,
            false => vec!["other".to_string(); labels.len()],
        };
        *counters.entry(key).or_default() += 1;
    }

    fn get(&self, labels: &[&str]) -> u64 {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        self.0.lock().unwrap().get(&key).copied().unwrap_or(0)
    }

    fn render(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> std::fmt::Result {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} counter")?;
        for (values, count) in self.0.lock().unwrap().iter() {
            let pairs: Vec<String> = labels
                .iter()
                .zip(values)
                .map(|(l, v)| format!("{l}=\"{}\"", escape(v)))
                .collect();
            writeln!(out, "{name}{{{}}} {count}", pairs.join(","))?;
        }
        Ok(())
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The federation's counters.
#[derive(Default)]
pub struct FederationMetrics {
    forwarded: Counters,
    received: Counters,
    refused: Counters,
    failed_over: Counters,
}

impl FederationMetrics {
    /// A request for `function` was forwarded to `peer` and answered `status` (0: no answer).
    pub fn forwarded(&self, function: &str, peer: &str, status: u16) {
        self.forwarded.add(&[function, peer, &status.to_string()]);
    }

    /// A request for `function` from `peer` was answered `status` here.
    pub fn received(&self, function: &str, peer: &str, status: u16) {
        self.received.add(&[function, peer, &status.to_string()]);
    }

    /// A federation request (or a client's request with federation headers, `peer` empty)
    /// was refused for `reason`.
    pub fn refused(&self, peer: &str, reason: &str) {
        self.refused.add(&[peer, reason]);
    }

    /// A request forwarded to `peer` was served here instead.
    pub fn failed_over(&self, function: &str, peer: &str) {
        self.failed_over.add(&[function, peer]);
    }

    /// Refusals so far for `reason` from `peer`.
    pub fn refusals(&self, peer: &str, reason: &str) -> u64 {
        self.refused.get(&[peer, reason])
    }

    /// Prometheus text of the counters.
    pub fn render(&self, out: &mut String) -> std::fmt::Result {
        self.forwarded.render(
            out,
            "baton_federation_forwarded_total",
            "Requests forwarded to a peer, by the peer's answer (0: none).",
            &["function_name", "peer", "code"],
        )?;
        self.received.render(
            out,
            "baton_federation_received_total",
            "Requests a peer forwarded here, by this site's answer.",
            &["function_name", "peer", "code"],
        )?;
        self.refused.render(
            out,
            "baton_federation_refused_total",
            "Federation requests refused (peer empty: a client's request carrying federation headers).",
            &["peer", "reason"],
        )?;
        self.failed_over.render(
            out,
            "baton_federation_failed_over_total",
            "Requests forwarded to a peer that did not answer, then served here.",
            &["function_name", "peer"],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = FederationMetrics::default();
        metrics.forwarded("f", "p", 200);
        metrics.forwarded("f", "p", 200);
        metrics.refused("", "spoofed \"header\"");
        let mut out = String::new();
        metrics.render(&mut out).unwrap();
        assert!(out.contains(
            "baton_federation_forwarded_total{function_name=\"f\",peer=\"p\",code=\"200\"} 2"
        ));
        assert!(
            out.contains("reason=\"spoofed \\\"header\\\"\"} 1"),
            "{out}"
        );
        assert_eq!(metrics.refusals("", "spoofed \"header\""), 1);
    }

    #[test]
    fn strangers_cannot_grow_the_series_without_bound() {
        let metrics = FederationMetrics::default();
        for i in 0..MAX_SERIES + 100 {
            metrics.refused(&format!("stranger-{i}"), "not-member");
        }
        assert_eq!(metrics.refused.0.lock().unwrap().len(), MAX_SERIES + 1);
        assert_eq!(metrics.refusals("other", "other"), 100);
    }
}
