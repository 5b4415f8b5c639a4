use anyhow::{Context, bail};
use std::collections::HashMap;
use std::path::Path;

/// A distribution given by its values at the 0th, 1st, 25th, 50th, 75th, 99th and 100th
/// percentiles (the Azure 2019 columns); sampled by linear interpolation between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Percentiles {
    /// Values at [`Percentiles::POINTS`].
    pub values: [f64; 7],
}

impl Percentiles {
    /// The percentiles the values stand at.
    pub const POINTS: [f64; 7] = [0.0, 1.0, 25.0, 50.0, 75.0, 99.0, 100.0];

    /// Every percentile the same value.
    pub fn constant(value: f64) -> Self {
        Percentiles { values: [value; 7] }
    }

    /// The value at quantile `u` in [0, 1].
    pub fn sample(&self, u: f64) -> f64 {
        let p = (u.clamp(0.0, 1.0)) * 100.0;
        for i in 1..Self::POINTS.len() {
            if p <= Self::POINTS[i] {
                let (p0, p1) = (Self::POINTS[i - 1], Self::POINTS[i]);
                let (v0, v1) = (self.values[i - 1], self.values[i]);
                return v0 + (v1 - v0) * (p - p0) / (p1 - p0);
            }
        }
        self.values[6]
    }
}

/// One function of a trace, with what a replay needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedFunction {
    /// The trace's function hash.
    pub id: String,
    /// The trace's app hash.
    pub app: String,
    /// Invocations in each minute (2019), or one arrival time per invocation in seconds (2021).
    pub arrivals: Arrivals,
    /// Execution time in milliseconds.
    pub duration_ms: Percentiles,
    /// Allocated memory in MiB.
    pub memory_mb: Percentiles,
}

/// When a traced function is invoked.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// Counts per minute (the 2019 format).
    PerMinute(Vec<u32>),
    /// Exact arrivals in seconds from the trace's start, with each invocation's duration in
    /// milliseconds (the 2021 format).
    Exact(Vec<(f64, f64)>),
}

/// Reads a CSV into rows of fields, with the header checked against `expect_prefix`.
fn rows(path: &Path, expect_prefix: &[&str]) -> anyhow::Result<Vec<(usize, Vec<String>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        bail!("{}: empty file", path.display())
    };
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    if header.len() < expect_prefix.len() || header[..expect_prefix.len()] != *expect_prefix {
        bail!(
            "{}:1: header must start with {}",
            path.display(),
            expect_prefix.join(",")
        );
    }
    Ok(lines
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            (
                index + 1,
                line.split(',').map(|f| f.trim().to_owned()).collect(),
            )
        })
        .collect())
}

fn number(path: &Path, line: usize, field: &str, what: &str) -> anyhow::Result<f64> {
    let value: f64 = field.parse().map_err(|_| {
        anyhow::anyhow!(
            "{}:{line}: {what} {field:?} is not a number",
            path.display()
        )
    })?;
    if !value.is_finite() || value < 0.0 {
        bail!(
            "{}:{line}: {what} {field:?} must be a non-negative number",
            path.display()
        );
    }
    Ok(value)
}

/// Reads the Azure 2019 trio from `dir`: `invocations.csv`, `durations.csv`, `memory.csv`.
/// Functions without duration statistics are dropped (as vHive's loader does); a missing
/// memory row means 128 MiB.
pub fn read_2019(dir: &Path) -> anyhow::Result<Vec<TracedFunction>> {
    let invocations_path = dir.join("invocations.csv");
    let durations_path = dir.join("durations.csv");
    let memory_path = dir.join("memory.csv");
    let mut durations = HashMap::new();
    for (line, fields) in rows(
        &durations_path,
        &[
            "HashOwner",
            "HashApp",
            "HashFunction",
            "Average",
            "Count",
            "Minimum",
            "Maximum",
        ],
    )? {
        if fields.len() != 14 {
            bail!(
                "{}:{line}: expected 14 fields, found {}",
                durations_path.display(),
                fields.len()
            );
        }
        let mut values = [0.0; 7];
        for (i, value) in values.iter_mut().enumerate() {
            *value = number(&durations_path, line, &fields[7 + i], "duration percentile")?;
        }
        durations.insert(fields[2].clone(), Percentiles { values });
    }
    let mut memory = HashMap::new();
    for (line, fields) in rows(
        &memory_path,
        &[
            "HashOwner",
            "HashApp",
            "HashFunction",
            "SampleCount",
            "AverageAllocatedMb",
        ],
    )? {
        if fields.len() != 13 {
            bail!(
                "{}:{line}: expected 13 fields, found {}",
                memory_path.display(),
                fields.len()
            );
        }
        // pct1, 5, 25, 50, 75, 95, 99, 100 → our 0, 1, 25, 50, 75, 99, 100 points.
        let at = |i: usize| number(&memory_path, line, &fields[i], "memory percentile");
        let values = [at(5)?, at(5)?, at(7)?, at(8)?, at(9)?, at(11)?, at(12)?];
        memory.insert(fields[1].clone(), Percentiles { values });
    }
    let mut out = Vec::new();
    for (line, fields) in rows(
        &invocations_path,
        &["HashOwner", "HashApp", "HashFunction", "Trigger"],
    )? {
        if fields.len() < 5 {
            bail!(
                "{}:{line}: no per-minute counts",
                invocations_path.display()
            );
        }
        let counts = fields[4..]
            .iter()
            .map(|f| {
                f.parse::<u32>().map_err(|_| {
                    anyhow::anyhow!(
                        "{}:{line}: count {f:?} is not a whole number",
                        invocations_path.display()
                    )
                })
            })
            .collect::<anyhow::Result<Vec<u32>>>()?;
        let Some(duration_ms) = durations.get(&fields[2]).cloned() else {
            continue;
        };
        out.push(TracedFunction {
            id: fields[2].clone(),
            app: fields[1].clone(),
            arrivals: Arrivals::PerMinute(counts),
            duration_ms,
            memory_mb: memory
                .get(&fields[1])
                .cloned()
                .unwrap_or_else(|| Percentiles::constant(128.0)),
        });
    }
    Ok(out)
}

/// Reads an Azure 2021 per-invocation file: `app,func,end_timestamp,duration` (seconds); each
/// arrival is the end minus the duration.
pub fn read_2021(path: &Path) -> anyhow::Result<Vec<TracedFunction>> {
    let mut functions: Vec<TracedFunction> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (line, fields) in rows(path, &["app", "func", "end_timestamp", "duration"])? {
        if fields.len() != 4 {
            bail!(
                "{}:{line}: expected 4 fields, found {}",
                path.display(),
                fields.len()
            );
        }
        let end = number(path, line, &fields[2], "end_timestamp")?;
        let duration = number(path, line, &fields[3], "duration")?;
        let slot = *index.entry(fields[1].clone()).or_insert_with(|| {
            functions.push(TracedFunction {
                id: fields[1].clone(),
                app: fields[0].clone(),
                arrivals: Arrivals::Exact(Vec::new()),
                duration_ms: Percentiles::constant(0.0),
                memory_mb: Percentiles::constant(128.0),
            });
            functions.len() - 1
        });
        if let Arrivals::Exact(list) = &mut functions[slot].arrivals {
            list.push(((end - duration).max(0.0), duration * 1000.0));
        }
    }
    for function in &mut functions {
        if let Arrivals::Exact(list) = &mut function.arrivals {
            list.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut durations: Vec<f64> = list.iter().map(|a| a.1).collect();
            durations.sort_by(f64::total_cmp);
            let at =
                |p: f64| durations[((durations.len() - 1) as f64 * p / 100.0).round() as usize];
            function.duration_ms = Percentiles {
                values: Percentiles::POINTS.map(at),
            };
        }
    }
    Ok(functions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/azure-trace-format")
    }

    #[test]
    fn reads_the_shipped_2019_examples() {
        let functions = read_2019(&shipped()).unwrap();
        assert_eq!(
            functions.len(),
            4,
            "every row of invocations.csv has duration statistics"
        );
        let first = &functions[0];
        assert!(matches!(&first.arrivals, Arrivals::PerMinute(counts) if counts[0] == 5));
        assert_eq!(first.duration_ms.values[3], 100.0);
        assert_eq!(first.memory_mb.values[3], 123.0);
    }

    #[test]
    fn reads_the_shipped_2021_examples() {
        let functions = read_2021(&shipped().join("Azure2021_30.csv")).unwrap();
        let total: usize = functions
            .iter()
            .map(|f| match &f.arrivals {
                Arrivals::Exact(list) => list.len(),
                Arrivals::PerMinute(_) => 0,
            })
            .sum();
        assert_eq!(total, 29);
        let Arrivals::Exact(list) = &functions[0].arrivals else {
            panic!()
        };
        assert_eq!(list[0], (1.0, 9000.0));
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(
            &path,
            "app,func,end_timestamp,duration\na,f,10,1\na,f,x,1\n",
        )
        .unwrap();
        let error = read_2021(&path).unwrap_err().to_string();
        assert!(
            error.contains("t.csv:3") && error.contains("end_timestamp"),
            "{error}"
        );
        std::fs::write(&path, "wrong,header\n").unwrap();
        assert!(
            read_2021(&path)
                .unwrap_err()
                .to_string()
                .contains("t.csv:1")
        );
    }

    #[test]
    fn percentile_sampling_interpolates_and_is_monotonic() {
        let p = Percentiles {
            values: [1.0, 2.0, 10.0, 20.0, 30.0, 90.0, 100.0],
        };
        assert_eq!(p.sample(0.0), 1.0);
        assert_eq!(p.sample(0.5), 20.0);
        assert_eq!(p.sample(1.0), 100.0);
        assert!((p.sample(0.375) - 15.0).abs() < 1e-9);
        let mut last = 0.0;
        for i in 0..=100 {
            let v = p.sample(f64::from(i) / 100.0);
            assert!(v >= last);
            last = v;
        }
    }
}
