//! What an HTTP answer must show (status, latency, body regexes, jq expectations on the JSON
//! body), judged once for every tool that checks a service: ugw-wait-healthy's `--url` and
//! ugw-verify's `http` checks share this judgement, its defaults (status 2xx, a 16 MiB body)
//! and its messages, so the two tools cannot drift apart again.

use super::{HttpResponse, StatusSet};
use crate::cancel::Cancel;
use crate::error::Result;
use crate::jq::{JqExpr, JqInput, parse_json};
use crate::scrub::excerpt;
use crate::time::human;
use regex::{Regex, RegexBuilder};
use std::time::{Duration, Instant};

/// How much of a body is read for the assertions: a health or smoke answer, or a Prometheus
/// exposition of a large service (the metrics scrape's own limit), never an upload.
pub const BODY_LIMIT: usize = 16 << 20;

/// How much of a body, a value or an output goes into a message.
pub const QUOTE_BYTES: usize = 80;

/// The status a check wants unless told otherwise: any success, as operators expect of a
/// health check (`204 No Content` is healthy).
pub const DEFAULT_STATUS: &str = "2xx";

/// How a missed expectation is classed (a tool that prints a line when a target's state
/// changes compares these, not the words, whose figures change every attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissKind {
    /// Another status than the wanted ones.
    Status(u16),
    /// Slower than the latency bound.
    TooSlow,
    /// A body assertion (regex, JSON, jq) did not hold.
    Assertion,
}

/// The first expectation an answer missed, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    pub kind: MissKind,
    pub reason: String,
}

impl Missed {
    fn assertion(reason: String) -> Self {
        Missed {
            kind: MissKind::Assertion,
            reason,
        }
    }
}

/// What a jq evaluation may use: it ends at `until` or on a signal, and that end is an
/// `Err` (kind `timeout` or `interrupted`), never a pass and never a plain miss: the caller
/// takes its deadline or interrupted path.
#[derive(Clone, Copy)]
pub struct JqBudget<'a> {
    pub until: Instant,
    pub cancel: &'a Cancel,
}

/// Where the expectations were given, for the words of a message: a flag is named
/// (`over --max-latency 100 ms`), a check of a file is named by the check itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GivenAs {
    Flags,
    File,
}

/// What an HTTP answer must show.
#[derive(Debug)]
pub struct Expectations {
    pub status: StatusSet,
    pub max_latency: Option<Duration>,
    /// Every one must match the body (multi-line: `^` and `$` at each line, as grep).
    pub body_regex: Vec<Regex>,
    /// Every one must yield true on the JSON body.
    pub expect: Vec<JqExpr>,
    pub given_as: GivenAs,
}

impl Expectations {
    /// A status of 2xx and nothing else.
    #[must_use]
    pub fn new(given_as: GivenAs) -> Self {
        Expectations {
            status: StatusSet::parse(DEFAULT_STATUS, "--status")
                .expect("the default status list parses"),
            max_latency: None,
            body_regex: Vec::new(),
            expect: Vec::new(),
            given_as,
        }
    }

    /// Whether the body is read as JSON: for a jq expectation here, or for what the caller
    /// reads besides (`more`: a version, a capture, a fail-fast expression).
    #[must_use]
    pub fn reads_json(&self, more: bool) -> bool {
        !self.expect.is_empty() || more
    }

    /// What is expected, in a few words (`status 2xx, within 300 ms, .status == "ok"`).
    #[must_use]
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("status {}", self.status.text())];
        if let Some(max) = self.max_latency {
            parts.push(format!("within {}", human(max)));
        }
        parts.extend(self.expect.iter().map(|e| e.text().to_string()));
        parts.extend(
            self.body_regex
                .iter()
                .map(|re| format!("body =~ /{}/", re.as_str())),
        );
        parts.join(", ")
    }

    /// The first expectation `response` misses (`None` when all hold), in this order:
    /// status, latency, body regexes, then the JSON body (`json`, from [`json_body`] when the
    /// caller reads JSON: see [`Expectations::reads_json`]): cut at the body limit, not
    /// JSON, a jq expectation not true. `Err` when a jq evaluation was cut by the deadline or a
    /// signal: never a pass.
    pub fn judge(
        &self,
        response: &HttpResponse,
        json: Option<&std::result::Result<JqInput, String>>,
        jq: JqBudget,
    ) -> Result<Option<Missed>> {
        let body = || excerpt(&response.body, QUOTE_BYTES);
        if !self.status.contains(response.status) {
            return Ok(Some(Missed {
                kind: MissKind::Status(response.status),
                reason: format!(
                    "status {}, expecting {} (body '{}')",
                    status_text(response),
                    self.status.text(),
                    body()
                ),
            }));
        }
        if let Some(max) = self.max_latency.filter(|max| response.latency > *max) {
            return Ok(Some(Missed {
                kind: MissKind::TooSlow,
                reason: format!(
                    "answered in {}, over {}{}",
                    human(response.latency),
                    self.named("--max-latency "),
                    human(max)
                ),
            }));
        }
        let text = String::from_utf8_lossy(&response.body);
        if let Some(re) = self.body_regex.iter().find(|re| !re.is_match(&text)) {
            return Ok(Some(Missed::assertion(format!(
                "the body does not match {}'{}': '{}'",
                self.named("--body-regex "),
                re.as_str(),
                body()
            ))));
        }
        // A body cut at the limit is refused by `json_body`, as one that is not JSON.
        let json = match json {
            None => return Ok(None),
            Some(Ok(json)) => json,
            Some(Err(e)) => return Ok(Some(Missed::assertion(e.clone()))),
        };
        let context = format!("body '{}'", body());
        Ok(expect_all(&self.expect, json, &context, jq)?.map(Missed::assertion))
    }

    fn named(&self, flag: &'static str) -> &'static str {
        match self.given_as {
            GivenAs::Flags => flag,
            GivenAs::File => "",
        }
    }
}

/// The body of `response` as JSON, or why it is not (cut at the body limit, not JSON).
pub fn json_body(response: &HttpResponse) -> std::result::Result<JqInput, String> {
    if response.truncated {
        return Err(too_large());
    }
    parse_json(&response.body)
}

fn too_large() -> String {
    format!("the body is larger than {} MiB", BODY_LIMIT >> 20)
}

/// Every jq expectation holds on `json` (`None`), or the first that does not, in words;
/// `context` says what `json` is (`body '{"status":"starting"}'`, `the record`). `Err` when
/// an evaluation was cut by the deadline or a signal.
pub fn expect_all(
    expect: &[JqExpr],
    json: &JqInput,
    context: &str,
    jq: JqBudget,
) -> Result<Option<String>> {
    for expr in expect {
        match expr.eval_until(json, jq.until, jq.cancel)? {
            Ok(outputs) if outputs.holds() => {}
            Ok(outputs) => {
                return Ok(Some(format!(
                    "{} '{}' is not true: it gave {} ({context})",
                    expr.flag(),
                    expr.text(),
                    outputs.shown(QUOTE_BYTES),
                )));
            }
            Err(e) => return Ok(Some(e)),
        }
    }
    Ok(None)
}

/// The first value of `expr` on `json` as text (`None` for null or nothing); the jq error
/// in words; `Err` when the evaluation was cut by the deadline or a signal.
pub fn first_text(
    expr: &JqExpr,
    json: &JqInput,
    jq: JqBudget,
) -> Result<std::result::Result<Option<String>, String>> {
    Ok(expr
        .eval_until(json, jq.until, jq.cancel)?
        .map(|outputs| outputs.first_text()))
}

/// A body regex: multi-line, so `^` and `$` match at each line of the body (Prometheus
/// text, logs), as `grep` does. An invalid one is a usage error naming `given_as`.
pub fn body_regex(re: &str, given_as: &str) -> Result<Regex> {
    RegexBuilder::new(re).multi_line(true).build().map_err(|e| {
        crate::error::Error::usage(format!(
            "{given_as} '{re}' is not a valid regular expression: {e}"
        ))
    })
}

/// `503 Service Unavailable`, or the bare code when the server gave no reason.
#[must_use]
pub fn status_text(response: &HttpResponse) -> String {
    if response.reason.is_empty() {
        response.status.to_string()
    } else {
        format!("{} {}", response.status, response.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, latency_ms: u64) -> HttpResponse {
        HttpResponse {
            status,
            reason: String::new(),
            body: body.as_bytes().to_vec(),
            truncated: false,
            latency: Duration::from_millis(latency_ms),
            retry_after: None,
            url: "http://127.0.0.1/".into(),
            content_type: None,
        }
    }

    fn judge(e: &Expectations, response: &HttpResponse) -> Option<Missed> {
        let cancel = Cancel::default();
        let budget = JqBudget {
            until: Instant::now() + Duration::from_secs(10),
            cancel: &cancel,
        };
        let json = e.reads_json(false).then(|| json_body(response));
        e.judge(response, json.as_ref(), budget).unwrap()
    }

    #[test]
    fn the_default_status_is_any_success() {
        let e = Expectations::new(GivenAs::Flags);
        for code in [200, 201, 204, 299] {
            assert_eq!(judge(&e, &answer(code, "", 1)), None, "{code}");
        }
        let missed = judge(&e, &answer(503, "starting", 1)).unwrap();
        assert_eq!(missed.kind, MissKind::Status(503));
        assert_eq!(missed.reason, "status 503, expecting 2xx (body 'starting')");
    }

    #[test]
    fn each_expectation_is_judged_in_order_with_one_set_of_words() {
        let mut e = Expectations::new(GivenAs::Flags);
        e.max_latency = Some(Duration::from_millis(100));
        e.body_regex = vec![body_regex("^ok", "--body-regex").unwrap()];
        e.expect = vec![JqExpr::compile(".n == 1", "--expect").unwrap()];
        let slow = judge(&e, &answer(200, "{}", 150)).unwrap();
        assert_eq!(slow.kind, MissKind::TooSlow);
        assert_eq!(slow.reason, "answered in 150 ms, over --max-latency 100 ms");
        let unmatched = judge(&e, &answer(200, "{}", 1)).unwrap();
        assert_eq!(
            unmatched.reason,
            "the body does not match --body-regex '^ok': '{}'"
        );
        e.body_regex.clear();
        let not_true = judge(&e, &answer(200, r#"{"n":2}"#, 1)).unwrap();
        assert_eq!(
            not_true.reason,
            r#"--expect '.n == 1' is not true: it gave false (body '{"n":2}')"#
        );
        assert_eq!(judge(&e, &answer(200, r#"{"n":1}"#, 1)), None);
        let mut cut = answer(200, r#"{"n":1}"#, 1);
        cut.truncated = true;
        assert_eq!(
            judge(&e, &cut).unwrap().reason,
            "the body is larger than 16 MiB"
        );
        let file = Expectations {
            given_as: GivenAs::File,
            max_latency: Some(Duration::from_millis(100)),
            ..Expectations::new(GivenAs::File)
        };
        assert_eq!(
            judge(&file, &answer(200, "{}", 150)).unwrap().reason,
            "answered in 150 ms, over 100 ms"
        );
    }

    #[test]
    fn a_cut_evaluation_is_an_error_never_a_pass_or_a_miss() {
        let mut e = Expectations::new(GivenAs::Flags);
        e.expect = vec![JqExpr::compile("last(range(1e12)) > 0", "--expect").unwrap()];
        let cancel = Cancel::default();
        let budget = JqBudget {
            until: Instant::now() + Duration::from_millis(200),
            cancel: &cancel,
        };
        let response = answer(200, "{}", 1);
        let json = json_body(&response);
        let err = e.judge(&response, Some(&json), budget).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Timeout, "{err}");
    }
}
