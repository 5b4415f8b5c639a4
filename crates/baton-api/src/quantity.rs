//! Parsing of the quantities OpenFaaS users write: Kubernetes memory (`64Mi`, `1G`) and Go
//! durations (`2s`, `1m30s`, `500ms`).

use std::time::Duration;

/// Parses a Kubernetes-style memory quantity into bytes: plain bytes, decimal suffixes
/// (`k`, `M`, `G`, `T`) or binary ones (`Ki`, `Mi`, `Gi`, `Ti`).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "memory quantity {text:?} has no number (expected e.g. \"64Mi\")"
        ));
    }
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => {
            return Err(format!(
                "memory quantity {text:?} has unknown suffix {suffix:?} (use Ki, Mi, Gi, k, M or G)"
            ));
        }
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("memory quantity {text:?} is too large"))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("memory quantity {text:?} is too large"))
}

/// The smallest CPU limit a control group can enforce: 1 ms of CPU per 100 ms period.
pub const MIN_CPU_MILLIS: u64 = 10;

/// Parses a Kubernetes CPU quantity into thousandths of a core: `100m`, `0.5`, `2`.
pub fn parse_cpu(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let millis = match text.strip_suffix('m') {
        Some(millis) => millis
            .parse::<u64>()
            .map_err(|_| format!("cpu quantity {text:?} is not a whole number of millicores")),
        None => match text.parse::<f64>() {
            Ok(cores) if (0.0..=1e6).contains(&cores) => Ok((cores * 1000.0).round() as u64),
            _ => Err(format!(
                "cpu quantity {text:?} is not a number of cores (expected e.g. \"0.5\" or \"500m\")"
            )),
        },
    }?;
    if millis < MIN_CPU_MILLIS {
        return Err(format!(
            "cpu quantity {text:?} is less than the smallest enforceable limit, {MIN_CPU_MILLIS}m"
        ));
    }
    Ok(millis)
}

/// Formats thousandths of a core the way [`parse_cpu`] reads them back (`500m`).
pub fn format_cpu(millis: u64) -> String {
    format!("{millis}m")
}

/// Parses a Go duration (`300ms`, `2s`, `1m30s`, `1h`); a bare number counts as seconds, as
/// the OpenFaaS watchdog accepts it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("duration is empty (expected e.g. \"2s\")".into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} ends without a unit (use ms, s, m or h)"))?;
        let (number, tail) = rest.split_at(split);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("duration {text:?} has a malformed number {number:?}"))?;
        let seconds = match unit {
            "ns" => value / 1e9,
            "us" | "µs" => value / 1e6,
            "ms" => value / 1e3,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => {
                return Err(format!(
                    "duration {text:?} has unknown unit {unit:?} (use ms, s, m or h)"
                ));
            }
        };
        total += Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("duration {text:?} is out of range"))?;
        rest = next;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities() {
        assert_eq!(parse_memory("64Mi"), Ok(64 << 20));
        assert_eq!(parse_memory("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert!(parse_memory("64MB").unwrap_err().contains("unknown suffix"));
        assert!(parse_memory("Mi").unwrap_err().contains("no number"));
        assert!(parse_memory("99999999999999999999Gi").is_err());
    }

    #[test]
    fn cpu_quantities_are_cores() {
        for (text, millis) in [
            ("100m", Ok(100)),
            ("0.5", Ok(500)),
            ("2", Ok(2000)),
            (" 1.25 ", Ok(1250)),
            ("10m", Ok(10)),
        ] {
            assert_eq!(parse_cpu(text), millis, "{text}");
            assert_eq!(parse_cpu(&format_cpu(millis.clone().unwrap())), millis);
        }
        for (text, why) in [
            ("5m", "smallest enforceable"),
            ("0", "smallest enforceable"),
            ("1.5m", "whole number of millicores"),
            ("lots", "number of cores"),
            ("-1", "number of cores"),
            ("NaN", "number of cores"),
            ("1e9", "number of cores"),
        ] {
            let error = parse_cpu(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("2 seconds").is_err());
        assert!(parse_duration("5").is_ok());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("3x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn durations_round_trip() {
        for d in [Duration::from_secs(3), Duration::from_millis(250)] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
