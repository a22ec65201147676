//! The comparison with a baseline taken before the upgrade: p95 latency may grow by the
//! latency tolerance, the error ratio may rise by the error tolerance in percentage points,
//! memory may grow by the memory tolerance; latency and memory never fail within their noise
//! floors (a small service's figures jitter by more than 20% of themselves). A
//! figure that is missing on either side cannot be judged: `insufficient_data`, never a pass.

use std::time::Duration;
use ugw_shared::results::{Comparison, Observation, VerifyBaseline};

#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    /// p95 may grow by this fraction (0.2 = 20%).
    pub latency: f64,
    /// Below this, a latency difference is timer and scheduler noise, never a regression.
    pub latency_floor: Duration,
    /// The error ratio may rise by this many percentage points.
    pub errors: f64,
    /// Memory may grow by this fraction.
    pub memory: f64,
    /// Below this many bytes, memory growth is allocator noise, never a regression.
    pub memory_floor: f64,
}

/// Parse `20%` or `0.2` as a fraction.
pub fn fraction(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    value
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("'{text}' is not a tolerance such as 20% or 0.2"))
}

/// Parse percentage points (`0.1`, or `0.1pp`, or `0.1%`).
pub fn points(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let number = text
        .strip_suffix("pp")
        .or_else(|| text.strip_suffix('%'))
        .unwrap_or(text);
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("'{text}' is not a number of percentage points such as 0.1"))
}

/// The comparison rows of one check that measured `current`.
pub fn compare(
    check: &str,
    current: &Observation,
    baseline: &VerifyBaseline,
    tolerances: &Tolerances,
) -> Vec<Comparison> {
    let before = baseline.checks.get(check);
    let mut rows = Vec::new();
    let mut row =
        |measure: &str, base: Option<f64>, now: Option<f64>, limit: &dyn Fn(f64) -> f64| {
            let limit = base.map(limit);
            let outcome = match (now, limit) {
                (Some(now), Some(limit)) if now > limit => "failed",
                (Some(_), Some(_)) => "passed",
                _ => "insufficient_data",
            };
            rows.push(Comparison {
                check: check.to_string(),
                measure: measure.to_string(),
                baseline: base,
                current: now,
                limit,
                outcome: outcome.to_string(),
            });
        };
    let floor_ms = tolerances.latency_floor.as_secs_f64() * 1000.0;
    if current.p95_ms.is_some() {
        let base = before.and_then(|b| b.p95_ms);
        row("p95_ms", base, current.p95_ms, &|b| {
            (b * (1.0 + tolerances.latency)).max(b + floor_ms)
        });
    }
    if current.error_ratio.is_some() || current.errors.is_some() && current.source == "metrics" {
        let base = before.and_then(|b| b.error_ratio);
        row("error_ratio", base, current.error_ratio, &|b| {
            b + tolerances.errors / 100.0
        });
    }
    if current.memory_bytes.is_some() {
        let base = before.and_then(|b| b.memory_bytes);
        row("memory_bytes", base, current.memory_bytes, &|b| {
            (b * (1.0 + tolerances.memory)).max(b + tolerances.memory_floor)
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerances() -> Tolerances {
        Tolerances {
            latency: 0.2,
            latency_floor: Duration::from_millis(5),
            errors: 0.1,
            memory: 0.25,
            memory_floor: 8.0 * 1024.0 * 1024.0,
        }
    }

    fn baseline(o: Observation) -> VerifyBaseline {
        VerifyBaseline {
            taken: String::new(),
            host: String::new(),
            checks: [("c".to_string(), o)].into(),
        }
    }

    fn outcomes(rows: &[Comparison]) -> Vec<(&str, &str)> {
        rows.iter()
            .map(|r| (r.measure.as_str(), r.outcome.as_str()))
            .collect()
    }

    #[test]
    fn each_tolerance_is_applied_to_its_own_figure() {
        let before = Observation {
            source: "metrics".into(),
            p95_ms: Some(100.0),
            error_ratio: Some(0.01),
            memory_bytes: Some(100e6),
            ..Observation::default()
        };
        let base = baseline(before.clone());
        let within = Observation {
            p95_ms: Some(119.0),
            error_ratio: Some(0.0109),
            memory_bytes: Some(124e6),
            ..before.clone()
        };
        let rows = compare("c", &within, &base, &tolerances());
        assert_eq!(
            outcomes(&rows),
            [
                ("p95_ms", "passed"),
                ("error_ratio", "passed"),
                ("memory_bytes", "passed")
            ]
        );
        let worse = Observation {
            p95_ms: Some(121.0),
            error_ratio: Some(0.0111),
            memory_bytes: Some(126e6),
            ..before
        };
        let rows = compare("c", &worse, &base, &tolerances());
        assert_eq!(
            outcomes(&rows),
            [
                ("p95_ms", "failed"),
                ("error_ratio", "failed"),
                ("memory_bytes", "failed")
            ]
        );
        assert_eq!(rows[0].limit, Some(120.0));
    }

    #[test]
    fn a_small_process_is_judged_beyond_the_memory_floor() {
        let mib = 1024.0 * 1024.0;
        let base = baseline(Observation {
            memory_bytes: Some(5.0 * mib),
            ..Observation::default()
        });
        let jitter = Observation {
            memory_bytes: Some(7.0 * mib),
            ..Observation::default()
        };
        assert_eq!(
            outcomes(&compare("c", &jitter, &base, &tolerances())),
            [("memory_bytes", "passed")]
        );
        let bloated = Observation {
            memory_bytes: Some(14.0 * mib),
            ..Observation::default()
        };
        assert_eq!(
            outcomes(&compare("c", &bloated, &base, &tolerances())),
            [("memory_bytes", "failed")]
        );
    }

    #[test]
    fn a_fast_service_is_judged_beyond_the_noise_floor_and_a_missing_figure_is_no_pass() {
        let base = baseline(Observation {
            p95_ms: Some(0.5),
            ..Observation::default()
        });
        let jitter = Observation {
            p95_ms: Some(3.0),
            ..Observation::default()
        };
        assert_eq!(
            outcomes(&compare("c", &jitter, &base, &tolerances())),
            [("p95_ms", "passed")]
        );
        let slow = Observation {
            p95_ms: Some(5.6),
            ..Observation::default()
        };
        assert_eq!(
            outcomes(&compare("c", &slow, &base, &tolerances())),
            [("p95_ms", "failed")]
        );
        let unknown = compare("other", &slow, &base, &tolerances());
        assert_eq!(outcomes(&unknown), [("p95_ms", "insufficient_data")]);
    }

    #[test]
    fn tolerances_read_as_operators_write_them() {
        assert!((fraction("20%").unwrap() - 0.2).abs() < 1e-12);
        assert!((fraction("0.25").unwrap() - 0.25).abs() < 1e-12);
        assert!((points("0.1").unwrap() - 0.1).abs() < 1e-12);
        assert!((points("0.5pp").unwrap() - 0.5).abs() < 1e-12);
        assert!(fraction("-1%").is_err() && points("lots").is_err());
    }
}
