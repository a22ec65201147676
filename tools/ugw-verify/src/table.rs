//! The compact table on stderr: one line per check (pass or fail, its type, what it
//! observed, and why it failed), then the comparison with the baseline. Through the reporter,
//! so it is scrubbed and quiet with `--quiet`.

use ugw_shared::report::Reporter;
use ugw_shared::results::{CheckResult, Comparison};

pub fn show(reporter: &Reporter, checks: &[CheckResult], comparison: &[Comparison]) {
    let width = checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for c in checks {
        let mark = match c.outcome.as_str() {
            "passed" => "PASS",
            "skipped" => "SKIP",
            "insufficient_data" => "DATA",
            _ => "FAIL",
        };
        let why = c
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        reporter.info(&format!(
            "{mark} {:<width$} {:<8} {}{why}",
            c.name, c.kind, c.observed
        ));
    }
    if comparison.is_empty() {
        return;
    }
    reporter.info("compared with the baseline:");
    for row in comparison {
        let figure = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| shown(&row.measure, v));
        let mark = match row.outcome.as_str() {
            "passed" => "PASS",
            "failed" => "FAIL",
            _ => "DATA",
        };
        reporter.info(&format!(
            "{mark} {:<width$} {:<12} {} -> {} (limit {})",
            row.check,
            row.measure,
            figure(row.baseline),
            figure(row.current),
            figure(row.limit)
        ));
    }
}

/// A figure in the unit of its measure.
pub fn shown(measure: &str, value: f64) -> String {
    match measure {
        "p95_ms" => format!("{value:.1} ms"),
        "error_ratio" => format!("{:.3}%", value * 100.0),
        "memory_bytes" => format!("{:.1} MiB", value / 1024.0 / 1024.0),
        _ => format!("{value}"),
    }
}
