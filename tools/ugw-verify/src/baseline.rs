//! Baselines: which checks a baseline runs, where `--compare` finds the one it compares with,
//! the tolerances, and what a comparison does to the checks it judges.

use crate::check::Verdict;
use crate::compare::{self, Tolerances};
use crate::spec::{self, Check};
use crate::table;
use std::path::Path;
use std::sync::Arc;
use ugw_shared::record::Status;
use ugw_shared::results::{CheckResult, Comparison, Verified, VerifyBaseline};
use ugw_shared::{Ctx, Error, Result};

/// The measuring checks and everything they wait for; nothing else is run for a baseline.
pub fn measuring_only(checks: Vec<Check>) -> Result<Vec<Check>> {
    let mut keep: Vec<bool> = checks.iter().map(Check::is_measuring).collect();
    if !keep.iter().any(|k| *k) {
        return Err(Error::usage(
            "baseline needs a measuring check: an http check with samples, or a metrics check with measure",
        ));
    }
    // Until nothing changes: a kept check keeps what it names in `after` and what it reads.
    loop {
        let mut changed = false;
        for i in 0..checks.len() {
            if !keep[i] {
                continue;
            }
            let reads = checks[i].reads_captures();
            for (j, other) in checks.iter().enumerate() {
                let needed = checks[i].after.contains(&other.name)
                    || spec::captures(other).any(|n| reads.iter().any(|r| r == n));
                if needed && !keep[j] {
                    keep[j] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(checks
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(c, _)| c)
        .collect())
}

/// The baseline to compare with: `--baseline FILE`, else the last ok baseline step of the
/// record. Without one, nothing is run (exit 2): a comparison with nothing is no pass.
pub fn find(ctx: &Ctx, file: Option<&Path>, checks: &[Check]) -> Result<VerifyBaseline> {
    if !checks.iter().any(Check::is_measuring) {
        return Err(Error::usage(
            "--compare needs a measuring check: an http check with samples, or a metrics check with measure",
        ));
    }
    if let Some(path) = file {
        let bytes = ugw_shared::atomic::read_capped(path, 16 << 20).map_err(|e| {
            Error::usage(format!(
                "--baseline {}: cannot read it ({e})",
                path.display()
            ))
        })?;
        return serde_json::from_slice(&bytes).map_err(|e| {
            Error::usage(format!(
                "--baseline {}: not a baseline written by `ugw-verify baseline --save` ({e})",
                path.display()
            ))
        });
    }
    ctx.this_run()
        .results_newest_first::<Verified>()
        .into_iter()
        .find_map(|(status, verified)| (status == Status::Ok).then_some(verified.baseline).flatten())
        .ok_or_else(|| {
            Error::usage(
                "--compare: the record has no ok `ugw-verify baseline` step; take one before the upgrade, or give --baseline FILE",
            )
        })
}

/// A baseline measured on another host says nothing of this one (other hardware, other
/// load): refused unless `--baseline-any-host` says it is meant.
pub fn same_host(ctx: &Ctx, any_host: bool, baseline: &VerifyBaseline) -> Result<()> {
    if baseline.host == ctx.host || any_host {
        return Ok(());
    }
    let taken = if baseline.host.is_empty() {
        "on a host it does not name".to_string()
    } else {
        format!("on {}", baseline.host)
    };
    Err(Error::usage(format!(
        "--compare: the baseline was taken {taken} (at {}), and this is {}: give \
         --baseline-any-host to compare with it all the same",
        baseline.taken, ctx.host
    )))
}

/// The comparison rows of every measuring check; a failed row fails its check, a row that
/// cannot be judged makes a passing check `insufficient_data`.
pub fn apply(
    results: &mut [CheckResult],
    checks: &[Arc<Check>],
    baseline: &VerifyBaseline,
    tolerances: &Tolerances,
) -> Vec<Comparison> {
    let mut all = Vec::new();
    for (result, check) in results.iter_mut().zip(checks).filter(|(r, _)| r.ok) {
        let figures = compare::figures(check);
        if figures.is_empty() {
            continue;
        }
        let observation = result.observation.clone().unwrap_or_default();
        let rows = compare::compare(&result.name, &figures, &observation, baseline, tolerances);
        let failed: Vec<String> = rows
            .iter()
            .filter(|r| r.outcome == "failed")
            .map(|r| {
                format!(
                    "{} {} -> {}, over the limit {}",
                    r.measure,
                    table::shown(&r.measure, r.baseline.unwrap_or_default()),
                    table::shown(&r.measure, r.current.unwrap_or_default()),
                    table::shown(&r.measure, r.limit.unwrap_or_default())
                )
            })
            .collect();
        let unknown: Vec<&str> = rows
            .iter()
            .filter(|r| r.outcome == "insufficient_data")
            .map(|r| r.measure.as_str())
            .collect();
        if !failed.is_empty() {
            result.ok = false;
            result.outcome = Verdict::Failed.word().into();
            result.message = Some(format!("worse than the baseline: {}", failed.join("; ")));
        } else if !unknown.is_empty() {
            result.ok = false;
            result.outcome = Verdict::Insufficient.word().into();
            result.message = Some(format!(
                "no figure to compare {} on (missing or not a number, in the baseline or now)",
                unknown.join(", ")
            ));
        }
        all.extend(rows);
    }
    all
}

/// `--memory-floor`: a size such as `8MiB` (plain numbers are bytes).
pub fn memory_floor(text: &str) -> std::result::Result<f64, String> {
    crate::metrics::parse_value(text)
        .ok()
        .filter(|v| *v >= 0.0)
        .ok_or_else(|| format!("'{text}' is not a size such as 8MiB"))
}
