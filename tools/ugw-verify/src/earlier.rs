//! The `record` check: jq expectations on the record that came in (what the steps before this
//! one did: `.steps[-1].result.time_to_healthy_ms < 30000`), through the same jq piece as
//! bodies, under the check's deadline.

use crate::check::{Outcome, expectations};
use std::time::Instant;
use ugw_shared::cancel::Cancel;
use ugw_shared::http::JqBudget;
use ugw_shared::jq::{JqExpr, JqInput};

pub fn run(expect: &[JqExpr], record: &JqInput, until: Instant, cancel: &Cancel) -> Outcome {
    let texts: Vec<&str> = expect.iter().map(JqExpr::text).collect();
    let expected = texts.join(", ");
    match expectations(expect, record, "the record", JqBudget { until, cancel }) {
        Ok(()) => Outcome::passed(expected, "all true".into()),
        Err(why) => Outcome::failed(expected, "not all true".into(), why),
    }
}
