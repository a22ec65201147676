//! The `versions` check: every node of a fleet asked at once for its version (a jq path in
//! its answer); all must equal the expected version (the last ugw-fetch step's by default,
//! `v1.1.0` = `1.1.0`) or, with `"same"`, each other.

use crate::check::{Outcome, Shared, checked, jq_first, render_headers};
use crate::spec::{ExpectVersion, VersionsCheck};
use std::collections::HashMap;
use std::time::Instant;
use ugw_shared::cancel::Cancel;
use ugw_shared::http::expect::{QUOTE_BYTES, json_body};
use ugw_shared::http::{BODY_LIMIT, JqBudget};
use ugw_shared::http::{HttpResponse, Request};
use ugw_shared::poll::{self, Attempt, AttemptError};
use ugw_shared::scrub::excerpt;
use ugw_shared::version;

pub fn run(
    v: &VersionsCheck,
    captured: &HashMap<String, String>,
    shared: &Shared,
    until: Instant,
) -> Outcome {
    let expected = match &v.expect {
        ExpectVersion::Exactly(want) => format!("every node at {want}"),
        _ => "every node at the same version".into(),
    };
    let requests = match requests(v, captured, shared) {
        Ok(requests) => requests,
        Err(why) => return Outcome::skipped(why),
    };
    let attempts = requests
        .into_iter()
        .map(|(url, request)| {
            let (client, cancel) = (shared.client.clone(), shared.cancel.clone());
            Attempt::new(move || {
                (
                    url,
                    client.fetch_request(request, until, BODY_LIMIT, &cancel),
                )
            })
        })
        .collect();
    let Ok(arrived) = poll::parallel(attempts, until, &shared.cancel) else {
        return Outcome::failed(expected, "interrupted".into(), "interrupted".into());
    };
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (index, arrived) in arrived.into_iter().enumerate() {
        let Some(arrived) = arrived else {
            problems.push(format!("node {}: no answer in time", index + 1));
            continue;
        };
        let (url, answer) = arrived.value;
        match node_version(v, answer, until, &shared.cancel) {
            Ok(version) => found.push((url, version)),
            Err(why) => problems.push(format!("{url}: {why}")),
        }
    }
    problems.extend(lagging(&v.expect, &found));
    let observed: Vec<String> = found
        .iter()
        .map(|(url, version)| format!("{url} {version}"))
        .collect();
    let observed = observed.join(", ");
    if problems.is_empty() {
        Outcome::passed(expected, observed)
    } else {
        Outcome::failed(expected, observed, problems.join("; "))
    }
}

/// One request per node, with the captures filled in.
fn requests(
    v: &VersionsCheck,
    captured: &HashMap<String, String>,
    shared: &Shared,
) -> Result<Vec<(String, Request)>, String> {
    let headers = render_headers(&v.headers, captured, &shared.scrubber)?;
    v.urls
        .iter()
        .map(|url| {
            let url = checked(&url.render(captured)?, &shared.scrubber)?;
            let request = headers
                .iter()
                .fold(Request::get(&url), |r, (name, value)| r.header(name, value));
            Ok((url, request))
        })
        .collect()
}

/// The nodes that are not at the expected version (or, with `same`, at the first node's).
fn lagging(expect: &ExpectVersion, found: &[(String, String)]) -> Vec<String> {
    let want = match expect {
        ExpectVersion::Exactly(want) => Some(want.clone()),
        _ => found.first().map(|(_, version)| version.clone()),
    };
    let Some(want) = want else { return Vec::new() };
    found
        .iter()
        .filter(|(_, version)| !version::same(version, &want))
        .map(|(url, version)| format!("{url} is at {version}, not {want}"))
        .collect()
}

fn node_version(
    v: &VersionsCheck,
    answer: Result<HttpResponse, AttemptError>,
    until: Instant,
    cancel: &Cancel,
) -> Result<String, String> {
    let response = answer.map_err(|e| e.message)?;
    if !(200..300).contains(&response.status) {
        return Err(format!("status {}", response.status));
    }
    let json = json_body(&response)?;
    jq_first(&v.path, &json, JqBudget { until, cancel })?.ok_or_else(|| {
        format!(
            "no version at {} in '{}'",
            v.path.text(),
            excerpt(&response.body, QUOTE_BYTES)
        )
    })
}
