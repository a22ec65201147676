//! The comparison with a baseline taken before the upgrade: p95 latency may grow by the
//! latency tolerance, the error ratio may rise by the error tolerance in percentage points,
//! memory may grow by the memory tolerance; latency and memory never fail within their noise
//! floors (a small service's figures jitter by more than 20% of themselves). A
//! figure that is missing on either side cannot be judged: `insufficient_data`, never a pass.

use crate::spec::{Check, Kind, Measure};
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

/// A figure a measuring check is compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    P95,
    ErrorRatio,
    Memory,
}

/// The figures `check` measures, each of which gets a row: a figure it measures but did not
/// read is `insufficient_data`, never left out.
pub fn figures(check: &Check) -> Vec<Figure> {
    match &check.kind {
        Kind::Http(h) if h.samples.is_some() => vec![Figure::P95, Figure::ErrorRatio],
        Kind::Metrics(m) => m
            .measure
            .iter()
            .map(|measure| match measure {
                Measure::Latency => Figure::P95,
                Measure::Errors => Figure::ErrorRatio,
                Measure::Memory => Figure::Memory,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The comparison rows of one check that measured `current`: one per figure it measures. A
/// figure missing or not a number (NaN, an infinity) on either side cannot be judged:
/// `insufficient_data`, never a pass.
pub fn compare(
    check: &str,
    figures: &[Figure],
    current: &Observation,
    baseline: &VerifyBaseline,
    tolerances: &Tolerances,
) -> Vec<Comparison> {
    let before = baseline.checks.get(check);
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    let floor_ms = tolerances.latency_floor.as_secs_f64() * 1000.0;
    figures
        .iter()
        .map(|figure| {
            let (measure, base, now, limit): (&str, _, _, &dyn Fn(f64) -> f64) = match figure {
                Figure::P95 => (
                    "p95_ms",
                    before.and_then(|b| b.p95_ms),
                    current.p95_ms,
                    &|b| (b * (1.0 + tolerances.latency)).max(b + floor_ms),
                ),
                Figure::ErrorRatio => (
                    "error_ratio",
                    before.and_then(|b| b.error_ratio),
                    current.error_ratio,
                    &|b| b + tolerances.errors / 100.0,
                ),
                Figure::Memory => (
                    "memory_bytes",
                    before.and_then(|b| b.memory_bytes),
                    current.memory_bytes,
                    &|b| (b * (1.0 + tolerances.memory)).max(b + tolerances.memory_floor),
                ),
            };
            let (base, now) = (finite(base), finite(now));
            let limit = base.map(limit);
            let outcome = match (now, limit) {
                (Some(now), Some(limit)) if now > limit => "failed",
                (Some(_), Some(_)) => "passed",
                _ => "insufficient_data",
            };
            Comparison {
                check: check.to_string(),
                measure: measure.to_string(),
                baseline: base,
                current: now,
                limit,
                outcome: outcome.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Figure] = &[Figure::P95, Figure::ErrorRatio, Figure::Memory];

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
        let rows = compare("c", ALL, &within, &base, &tolerances());
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
        let rows = compare("c", ALL, &worse, &base, &tolerances());
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
            outcomes(&compare(
                "c",
                &[Figure::Memory],
                &jitter,
                &base,
                &tolerances()
            )),
            [("memory_bytes", "passed")]
        );
        let bloated = Observation {
            memory_bytes: Some(14.0 * mib),
            ..Observation::default()
        };
        assert_eq!(
            outcomes(&compare(
                "c",
                &[Figure::Memory],
                &bloated,
                &base,
                &tolerances()
            )),
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
            outcomes(&compare("c", &[Figure::P95], &jitter, &base, &tolerances())),
            [("p95_ms", "passed")]
        );
        let slow = Observation {
            p95_ms: Some(5.6),
            ..Observation::default()
        };
        assert_eq!(
            outcomes(&compare("c", &[Figure::P95], &slow, &base, &tolerances())),
            [("p95_ms", "failed")]
        );
        let unknown = compare("other", &[Figure::P95], &slow, &base, &tolerances());
        assert_eq!(outcomes(&unknown), [("p95_ms", "insufficient_data")]);
    }

    #[test]
    fn a_figure_that_is_not_a_number_or_is_missing_is_never_a_pass() {
        let base = baseline(Observation {
            p95_ms: Some(10.0),
            memory_bytes: Some(100e6),
            ..Observation::default()
        });
        let nan = Observation {
            p95_ms: Some(f64::NAN),
            memory_bytes: Some(f64::INFINITY),
            ..Observation::default()
        };
        let rows = compare("c", ALL, &nan, &base, &tolerances());
        assert_eq!(
            outcomes(&rows),
            [
                ("p95_ms", "insufficient_data"),
                ("error_ratio", "insufficient_data"),
                ("memory_bytes", "insufficient_data")
            ]
        );
        assert_eq!(rows[0].current, None);
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
