//! `baton bench trace`: synthetic traces and trace replay.

use super::bench::{progress, resolve_target};
use super::deploy::deploy_one;
use crate::cli::{Booking, TraceGenerateArgs, TraceReplayArgs};
use anyhow::Context;
use baton_api::DeployRequest;
use baton_bench::trace::{
    SynthConfig, read_2019, read_2021, replay as send, schedule, summarise, write_synthetic,
};
use bytes::Bytes;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn generate(args: TraceGenerateArgs) -> anyhow::Result<ExitCode> {
    let config = SynthConfig {
        functions: args.functions,
        minutes: args.minutes,
        min_rate: args.min_rate,
        max_rate: args.max_rate,
        median_duration_ms: args.median_duration_ms,
        seed: args.seed,
        min_memory_mb: args.min_memory_mb,
        max_memory_mb: args.max_memory_mb,
        ..SynthConfig::default()
    };
    anyhow::ensure!(
        args.min_memory_mb >= 1.0 && args.max_memory_mb >= args.min_memory_mb,
        "--min-memory-mb must be at least 1 and at most --max-memory-mb"
    );
    write_synthetic(&args.out, &config)?;
    eprintln!(
        "wrote a {}-function, {}-minute trace to {}",
        args.functions,
        args.minutes,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What a replayed function books, MiB: room for what the busy guest touches (at most
/// `max_memory_mb`) plus 32 MiB, and with [`Booking::Trace`] at least the trace's most
/// allocated memory (`traced_max_mb`) rounded up to 16 MiB.
fn booked_mb(booking: Booking, max_memory_mb: u64, traced_max_mb: f64) -> u64 {
    let floor = max_memory_mb + 32;
    match booking {
        Booking::Fixed => floor,
        Booking::Trace => ((traced_max_mb.max(0.0).ceil() as u64).div_ceil(16) * 16).max(floor),
    }
}

/// `MIN-MAX` milliseconds, both positive, MIN at most MAX.
fn init_range(text: &str) -> anyhow::Result<(f64, f64)> {
    let parsed = text
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((low, high)) if low >= 1.0 && high >= low => Ok((low, high)),
        _ => anyhow::bail!("--init-ms {text:?}: expected MIN-MAX milliseconds, 1 <= MIN <= MAX"),
    }
}

/// A deployable name for the trace's `index`th function (hashes are not valid names).
fn name_of(index: usize, id: &str) -> String {
    let clean: String = id
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    format!("t{index}-{clean}")
}

pub async fn replay(args: TraceReplayArgs) -> anyhow::Result<ExitCode> {
    let mut functions = if args.trace.is_dir() {
        read_2019(&args.trace)?
    } else {
        read_2021(&args.trace)?
    };
    if let Some(max) = args.max_functions {
        functions.truncate(max);
    }
    anyhow::ensure!(
        !functions.is_empty(),
        "{}: no functions to replay",
        args.trace.display()
    );
    let minute =
        baton_api::parse_duration(&args.minute).map_err(|e| anyhow::anyhow!("--minute: {e}"))?;
    let max_duration = baton_api::parse_duration(&args.max_duration)
        .map_err(|e| anyhow::anyhow!("--max-duration: {e}"))?;
    let arrivals = schedule(
        &functions,
        minute,
        args.minutes,
        max_duration.as_millis() as u64,
        args.max_memory_mb,
        args.seed,
    );
    let (_local, target, client) = resolve_target(&args.target).await?;
    let ids: Vec<String> = functions.iter().map(|f| f.id.clone()).collect();
    let names: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| name_of(i, id))
        .collect();
    let timeout = max_duration * 3 + std::time::Duration::from_secs(10);
    let process = match &args.process_dir {
        Some(dir) => Some((
            dir.canonicalize()
                .with_context(|| format!("--process-dir {}", dir.display()))?,
            init_range(&args.init_ms)?,
        )),
        None => None,
    };
    let mut rng = fastrand::Rng::with_seed(args.seed);
    for (name, function) in names.iter().zip(&functions) {
        let booked_mb = booked_mb(
            args.booking,
            args.max_memory_mb,
            function.memory_mb.values[6],
        );
        let mut request = DeployRequest {
            service: name.clone(),
            image: "guests/busy".into(),
            env_vars: [(
                "exec_timeout".to_owned(),
                baton_api::format_duration(timeout),
            )]
            .into(),
            limits: Some(baton_api::ResourceLimits {
                memory: Some(format!("{booked_mb}Mi")),
                cpu: None,
            }),
            ..DeployRequest::default()
        };
        let component = match &process {
            Some((dir, (low, high))) => {
                let init = (low.ln() + rng.f64() * (high.ln() - low.ln()))
                    .exp()
                    .round();
                request.image = String::new();
                request.env_process = Some("python3 server.py".into());
                request.working_dir = Some(dir.display().to_string());
                request.env_vars.insert("mode".into(), "http".into());
                request.env_vars.insert("INIT_MS".into(), init.to_string());
                None
            }
            None => Some(Bytes::from_static(baton_guests::BUSY)),
        };
        deploy_one(&client, &request, component)
            .await
            .with_context(|| format!("deploying {name}"))?;
    }
    eprintln!(
        "deployed {} functions; replaying {} invocations over {:.0} s",
        names.len(),
        arrivals.len(),
        arrivals.last().map_or(0.0, |a| a.at.as_secs_f64())
    );
    let outcomes = send(
        &arrivals,
        &target,
        &names,
        timeout,
        args.max_in_flight,
        progress("replay".into()),
    )
    .await;
    let summary = summarise(&outcomes, &ids, &names);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("benchmarks/results/trace-replay"));
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("replay.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    let mut csv = String::from(
        "function,name,invocations,failures,cold_starts,slowdown_median,slowdown_p99\n",
    );
    for f in &summary.functions {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{:.3},{:.3}",
            f.id,
            f.name,
            f.invocations,
            f.failures,
            f.cold_starts,
            f.slowdown_median,
            f.slowdown_p99
        );
    }
    std::fs::write(out.join("replay-functions.csv"), csv)?;
    if args.json {
        crate::output::json(&summary)?;
    } else {
        println!(
            "{} invocations of {} functions: {} failed {:?}, {} cold starts costing {:.0} ms ({:.2} % of execution time)\nslowdown (response / execution): median {:.2}, p99 {:.2}; per-function medians: median {:.2}, p99 {:.2}\nresults in {}",
            summary.invocations,
            summary.functions.len(),
            summary.failures,
            summary.failure_causes,
            summary.cold_starts,
            summary.cold_overhead_ms,
            summary.cold_overhead_share * 100.0,
            summary.slowdown_median,
            summary.slowdown_p99,
            summary.per_function_median_slowdown,
            summary.per_function_p99_slowdown,
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookings_leave_room_for_the_guest_and_follow_the_trace() {
        let cases = [
            (Booking::Fixed, 64, 500.0, 96),
            (Booking::Trace, 64, 500.0, 512),
            (Booking::Trace, 64, 512.0, 512),
            (Booking::Trace, 64, 513.2, 528),
            (Booking::Trace, 64, 40.0, 96),
        ];
        for (booking, cap, traced, booked) in cases {
            assert_eq!(
                booked_mb(booking, cap, traced),
                booked,
                "{booking:?} {traced}"
            );
        }
    }

    #[test]
    fn init_ranges_parse_or_say_what_is_expected() {
        assert_eq!(init_range("100-3000").unwrap(), (100.0, 3000.0));
        assert_eq!(init_range("5-5").unwrap(), (5.0, 5.0));
        for bad in ["", "100", "3000-100", "0-10", "a-b"] {
            assert!(init_range(bad).is_err(), "{bad:?}");
        }
    }
}
