//! Crash consistency, proven (issue 23 part 2): each tool is killed with SIGKILL at its
//! durability boundaries and at moments spread evenly over its run, and what it leaves on disk
//! is checked against what ugw promises after a crash.
//!
//! Two ways to kill:
//! - a named failpoint (`shared/src/failpoint.rs`): `UGW_FAILPOINT=NAME[@N]` in the tool's
//!   environment makes the debug build `cargo build --workspace` made kill itself with SIGKILL
//!   at exactly that point (after the temp write, after the fsync, after the rename, before and
//!   after a ledger commit, after a release's move and after the `current` switch...); the test
//!   sees it die by signal 9 (`points.rs`);
//! - a sweep: one run is timed, then runs are killed at even fractions of that time until 50
//!   kills have landed, a run that finishes first shrinking the window to its own time
//!   (`sweep.rs`, which prints a table of kills and violations per tool).
//!
//! After every kill the same invariants (`scenarios.rs`): nothing under a final name is
//! incomplete (whatever is left half-done carries a temp name, `atomic::is_temp_name`);
//! `current` (or the target binary) is a complete release; the ledger matches the schema (no
//! applied-but-unrecorded or recorded-but-unapplied migration; a no-transaction one at most
//! flagged dirty); the record file parses and its last step tells what was done; the failure
//! path run on what is left puts the node back; and a rerun completes.

use crate::kit;

mod compose;
mod points;
mod scenarios;
mod sweep;
