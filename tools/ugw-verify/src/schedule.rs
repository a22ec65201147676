//! In what order the checks run: a check waits for the checks it names in `after` and for
//! those that capture a value it reads. Ready checks run together, at most `--parallel` at a
//! time, each with its own deadline, on the shared `poll::parallel` (a hung check is
//! abandoned at its deadline and the others are unaffected); a latency check runs alone. A
//! check whose dependency did not pass is skipped unless it is marked `always` (a cleanup).

use crate::check::{self, Outcome, Shared, Verdict};
use crate::spec::{Check, captures};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ugw_shared::Result;
use ugw_shared::poll;

/// The indices of the checks `checks[i]` waits for.
fn dependencies<C: Borrow<Check>>(checks: &[C], i: usize) -> Vec<usize> {
    let check: &Check = checks[i].borrow();
    let reads = check.reads_captures();
    checks
        .iter()
        .enumerate()
        .filter(|(j, other)| {
            let other: &Check = (*other).borrow();
            *j != i
                && (check.after.contains(&other.name)
                    || captures(other).any(|n| reads.iter().any(|r| r == n)))
        })
        .map(|(j, _)| j)
        .collect()
}

/// A circle of dependencies, by name, if there is one.
pub fn find_cycle(checks: &[Check]) -> Option<Vec<String>> {
    // 0: not visited, 1: on the current path, 2: done.
    fn visit(
        checks: &[Check],
        i: usize,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        path.push(i);
        for j in dependencies(checks, i) {
            if state[j] == 1 {
                let start = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut names: Vec<String> = path[start..]
                    .iter()
                    .map(|&p| checks[p].name.clone())
                    .collect();
                names.push(checks[j].name.clone());
                return Some(names);
            }
            if state[j] == 0
                && let Some(cycle) = visit(checks, j, state, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; checks.len()];
    (0..checks.len()).find_map(|i| {
        (state[i] == 0)
            .then(|| visit(checks, i, &mut state, &mut Vec::new()))
            .flatten()
    })
}

/// How long `check` may run: its `timeout`, or the default for what it does.
fn budget(check: &Check) -> Duration {
    check.timeout.unwrap_or_else(|| check.default_timeout())
}

/// The time the `always` checks (the cleanups) keep for themselves out of the deadline: each
/// one's own timeout, so that a cleanup gets its time however long the others take.
pub fn reserved_for_always<C: Borrow<Check>>(checks: &[C]) -> Duration {
    checks
        .iter()
        .map(Borrow::borrow)
        .filter(|c: &&Check| c.always)
        .map(budget)
        .sum()
}

/// One check as it ended, with how long it took.
pub struct Ran {
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Run every check (in dependency order, ready ones together) before `deadline`.
pub fn run_all(
    checks: &[Arc<Check>],
    shared: &Arc<Shared>,
    parallel: usize,
    deadline: Instant,
) -> Result<Vec<Ran>> {
    let deps: Vec<Vec<usize>> = (0..checks.len()).map(|i| dependencies(checks, i)).collect();
    let mut done: Vec<Option<Ran>> = checks.iter().map(|_| None).collect();
    let mut captured: HashMap<String, String> = HashMap::new();
    loop {
        let ready: Vec<usize> = (0..checks.len())
            .filter(|&i| done[i].is_none() && deps[i].iter().all(|&d| done[d].is_some()))
            .collect();
        if ready.is_empty() {
            break;
        }
        let mut runnable = Vec::new();
        for i in ready {
            let failed_dep = deps[i].iter().find(|&&d| {
                done[d]
                    .as_ref()
                    .is_some_and(|r| r.outcome.verdict != Verdict::Passed)
            });
            match failed_dep {
                Some(&d) if !checks[i].always => {
                    let why = format!("'{}' did not pass", checks[d].name);
                    done[i] = Some(Ran {
                        outcome: Outcome::skipped(why),
                        elapsed: Duration::ZERO,
                    });
                }
                _ => runnable.push(i),
            }
        }
        if runnable.is_empty() {
            continue;
        }
        let wave = next_wave(checks, &runnable, parallel);
        // What the cleanups still to come keep for themselves: this wave ends before it.
        let reserved: Duration = (0..checks.len())
            .filter(|&j| checks[j].always && done[j].is_none() && !wave.contains(&j))
            .map(|j| budget(&checks[j]))
            .sum();
        let wave_deadline = deadline.checked_sub(reserved).unwrap_or_else(Instant::now);
        for (i, ran) in run_wave(checks, &wave, shared, &captured, wave_deadline)? {
            captured.extend(ran.outcome.captured.iter().cloned());
            done[i] = Some(ran);
        }
        // A check that saw the signal first reports a failure of its own; the run is
        // interrupted all the same, and no further check starts.
        shared.cancel.check()?;
    }
    Ok(done
        .into_iter()
        .map(|r| r.expect("every check ran or was skipped"))
        .collect())
}

/// The checks to start now: up to `parallel` of the ready ones that measure no latency (in
/// the order they were given); when only latency checks are ready, the first of them alone.
fn next_wave(checks: &[Arc<Check>], runnable: &[usize], parallel: usize) -> Vec<usize> {
    let others: Vec<usize> = runnable
        .iter()
        .copied()
        .filter(|&i| !checks[i].measures_latency())
        .take(parallel.max(1))
        .collect();
    if others.is_empty() {
        runnable.iter().copied().take(1).collect()
    } else {
        others
    }
}

fn run_wave(
    checks: &[Arc<Check>],
    wave: &[usize],
    shared: &Arc<Shared>,
    captured: &HashMap<String, String>,
    deadline: Instant,
) -> Result<Vec<(usize, Ran)>> {
    let started = Instant::now();
    let untils: Vec<Instant> = wave
        .iter()
        .map(|&i| (started + budget(&checks[i])).min(deadline))
        .collect();
    let attempts = wave
        .iter()
        .zip(&untils)
        .map(|(&i, &until)| {
            check::attempt(
                Arc::clone(&checks[i]),
                Arc::clone(shared),
                captured.clone(),
                until,
            )
        })
        .collect();
    let last = untils.iter().copied().max().unwrap_or(deadline);
    let arrived = poll::parallel(attempts, last, &shared.cancel)?;
    Ok(wave
        .iter()
        .zip(untils)
        .zip(arrived)
        .map(|((&i, until), arrived)| {
            let ran = match arrived {
                Some(a) => Ran {
                    outcome: a.value,
                    elapsed: a.at - started,
                },
                // It kept no deadline of its own: abandoned, never waited for longer.
                None => Ran {
                    outcome: Outcome::failed(
                        String::new(),
                        "no answer".into(),
                        format!(
                            "timed out after {}",
                            ugw_shared::time::human(until - started)
                        ),
                    ),
                    elapsed: until - started,
                },
            };
            (i, ran)
        })
        .collect())
}
