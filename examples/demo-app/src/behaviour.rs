//! What the demo service answers: its routes, and the failure modes that
//! make /health/ready misbehave on purpose so tests can drive every path of
//! a health checker. Failure modes key off the request count, not the
//! clock, so a test knows exactly which answer its n-th probe gets.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::schema::Schema;
use crate::server::{Request, Response, Stats};

/// How /health/ready (and the response timing) should behave; set by flags.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub version_label: String,
    pub ready_after: Duration,
    pub fail_first: u64,
    pub fail_every: Option<u64>,
    pub retry_after: Option<u64>,
    pub hang_first: u64,
    pub hang: bool,
    pub garbage: bool,
    pub slow: Duration,
    pub status_field: String,
    pub fail_status: u16,
    pub schema: Schema,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            version_label: "v1.0.0".into(),
            ready_after: Duration::ZERO,
            fail_first: 0,
            fail_every: None,
            retry_after: None,
            hang_first: 0,
            hang: false,
            garbage: false,
            slow: Duration::ZERO,
            status_field: "ok".into(),
            fail_status: 200,
            schema: Schema::default(),
        }
    }
}

/// The kind of answer one /health/ready request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyAnswer {
    /// Read but never answered.
    Hang,
    /// 503 `{"status":"starting"}`.
    Starting,
    /// 503 `{"status":"degraded"}`.
    Degraded,
    /// 200 with an HTML body.
    Garbage,
    /// `--fail-status` (default 200) with `{"status":..,"version":..}`.
    Ready,
}

impl Behaviour {
    /// The answer for the `n`-th (1-based) /health/ready request, given
    /// whether `--ready-after` has passed. Hanging wins over everything,
    /// then "starting", then "degraded".
    pub fn ready_answer(&self, n: u64, warmed_up: bool) -> ReadyAnswer {
        if self.hang || n <= self.hang_first {
            ReadyAnswer::Hang
        } else if !warmed_up || n <= self.fail_first {
            ReadyAnswer::Starting
        } else if self.fail_every.is_some_and(|k| n.is_multiple_of(k)) {
            ReadyAnswer::Degraded
        } else if self.garbage {
            ReadyAnswer::Garbage
        } else {
            ReadyAnswer::Ready
        }
    }
}

pub enum Outcome {
    Respond(Response),
    /// Leave the request unanswered (`--hang`, `--hang-first`).
    Hang,
}

pub struct App {
    behaviour: Behaviour,
    started: Instant,
    ready_requests: AtomicU64,
}

const ROUTES: [&str; 6] = [
    "/health/ready",
    "/health/live",
    "/metrics",
    "/debug/echo",
    "/redirect",
    "/slow",
];

impl App {
    pub fn new(behaviour: Behaviour, started: Instant) -> Self {
        App {
            behaviour,
            started,
            ready_requests: AtomicU64::new(0),
        }
    }

    /// Delay before every response is written.
    pub fn slow(&self) -> Duration {
        self.behaviour.slow
    }

    fn warmed_up(&self) -> bool {
        self.started.elapsed() >= self.behaviour.ready_after
    }

    pub fn handle(&self, request: &Request, stats: &Stats) -> Outcome {
        let path = request.path.as_str();
        if !ROUTES.contains(&path) {
            return Outcome::Respond(error(404, "not found"));
        }
        if request.method != "GET" && request.method != "HEAD" {
            return Outcome::Respond(
                error(405, "method not allowed").with_header("Allow", "GET, HEAD"),
            );
        }
        let response = match path {
            "/health/ready" => return self.ready(),
            "/health/live" => Response::json(200, &json!({ "status": "alive" })),
            "/metrics" => self.metrics(stats),
            "/debug/echo" => echo(request),
            "/redirect" => redirect(request.query.as_deref()),
            _ => slow(request.query.as_deref()),
        };
        Outcome::Respond(response)
    }

    fn ready(&self) -> Outcome {
        let n = self.ready_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let b = &self.behaviour;
        let response = match b.ready_answer(n, self.warmed_up()) {
            ReadyAnswer::Hang => return Outcome::Hang,
            ReadyAnswer::Starting => Response::json(503, &json!({ "status": "starting" })),
            ReadyAnswer::Degraded => Response::json(503, &json!({ "status": "degraded" })),
            ReadyAnswer::Garbage => Response::text(200, "text/html", "<html>not json</html>"),
            // A release whose columns are not there yet must not take traffic: it says why.
            ReadyAnswer::Ready => match b.schema.not_ready_because() {
                Some(reason) => Response::json(
                    503,
                    &json!({ "status": "waiting for migration", "reason": reason, "version": b.version_label }),
                ),
                None => Response::json(
                    b.fail_status,
                    &json!({ "status": b.status_field, "version": b.version_label }),
                ),
            },
        };
        Outcome::Respond(match b.retry_after {
            Some(secs) if response.status == 503 => {
                response.with_header("Retry-After", secs.to_string())
            }
            _ => response,
        })
    }

    fn metrics(&self, stats: &Stats) -> Response {
        let next = self.ready_requests.load(Ordering::SeqCst) + 1;
        let ready = matches!(
            self.behaviour.ready_answer(next, self.warmed_up()),
            ReadyAnswer::Ready | ReadyAnswer::Garbage
        );
        let mut text = String::new();
        text.push_str("# HELP http_requests_in_flight Requests currently being handled, excluding this one.\n");
        text.push_str("# TYPE http_requests_in_flight gauge\n");
        // This request is itself in flight; callers want to see the others.
        let _ = writeln!(
            text,
            "http_requests_in_flight {}",
            stats.in_flight().saturating_sub(1)
        );
        text.push_str("# HELP http_requests_total Responses sent so far, by status code.\n");
        text.push_str("# TYPE http_requests_total counter\n");
        for (code, count) in stats.answered() {
            let _ = writeln!(text, "http_requests_total{{code=\"{code}\"}} {count}");
        }
        text.push_str("# HELP demo_ready Whether the next /health/ready request would be answered as ready.\n");
        text.push_str("# TYPE demo_ready gauge\n");
        let _ = writeln!(text, "demo_ready {}", u8::from(ready));
        Response::text(200, "text/plain; version=0.0.4; charset=utf-8", text)
    }
}

fn error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({ "error": message }))
}

/// Shows a test exactly what reached the server, e.g. that a credential
/// header was dropped when a client followed a redirect.
fn echo(request: &Request) -> Response {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        // Repeated fields combine as HTTP defines for list-valued headers.
        let combined = match headers.get(&name) {
            Some(Value::String(earlier)) => format!("{earlier}, {value}"),
            _ => value.clone(),
        };
        headers.insert(name, Value::String(combined));
    }
    Response::json(
        200,
        &json!({
            "method": request.method,
            "path": request.path,
            "query": request.query.as_deref().unwrap_or(""),
            "headers": headers,
        }),
    )
}

fn redirect(query: Option<&str>) -> Response {
    let to = match query_param(query, "to") {
        Some(Ok(to)) => to,
        Some(Err(())) => {
            return error(
                400,
                "query parameter 'to' is not valid percent-encoded UTF-8",
            );
        }
        None => return error(400, "missing query parameter 'to'"),
    };
    // A decoded CR or LF would let the query inject response headers.
    if to.is_empty() || to.chars().any(char::is_control) {
        return error(
            400,
            "query parameter 'to' is empty or has control characters",
        );
    }
    Response::json(302, &json!({ "location": to })).with_header("Location", to)
}

fn slow(query: Option<&str>) -> Response {
    let ms = match query_param(query, "ms") {
        Some(Ok(ms)) => ms.parse::<u64>().ok(),
        _ => None,
    };
    let Some(ms) = ms else {
        return error(400, "query parameter 'ms' must be a non-negative integer");
    };
    thread::sleep(Duration::from_millis(ms));
    Response::json(200, &json!({ "slept_ms": ms }))
}

/// The first value of `name` in a raw query string: `None` if absent,
/// `Err` if it does not decode.
fn query_param(query: Option<&str>, name: &str) -> Option<Result<String, ()>> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key).as_deref() == Some(name)).then(|| percent_decode(value).ok_or(()))
    })
}

/// Decodes `%XX` escapes. `+` is left alone: it is a literal character in
/// the URLs passed to /redirect, not form-encoding for a space. `None` for
/// a malformed escape or a result that is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::parse_head;

    fn answers(b: &Behaviour, warmed_up: bool, count: u64) -> Vec<ReadyAnswer> {
        (1..=count).map(|n| b.ready_answer(n, warmed_up)).collect()
    }

    use ReadyAnswer::{Degraded, Garbage, Hang, Ready, Starting};

    #[test]
    fn default_is_ready_once_warmed_up() {
        let b = Behaviour::default();
        assert_eq!(answers(&b, true, 3), [Ready, Ready, Ready]);
        assert_eq!(answers(&b, false, 2), [Starting, Starting]);
    }

    #[test]
    fn fail_first_then_ready() {
        let b = Behaviour {
            fail_first: 2,
            ..Behaviour::default()
        };
        assert_eq!(answers(&b, true, 4), [Starting, Starting, Ready, Ready]);
    }

    #[test]
    fn fail_every_alternates() {
        let b = Behaviour {
            fail_every: Some(2),
            ..Behaviour::default()
        };
        assert_eq!(answers(&b, true, 4), [Ready, Degraded, Ready, Degraded]);
        let b = Behaviour {
            fail_every: Some(3),
            fail_first: 1,
            ..Behaviour::default()
        };
        assert_eq!(
            answers(&b, true, 6),
            [Starting, Ready, Degraded, Ready, Ready, Degraded]
        );
    }

    #[test]
    fn hang_wins() {
        let b = Behaviour {
            hang_first: 2,
            fail_first: 3,
            ..Behaviour::default()
        };
        assert_eq!(answers(&b, true, 4), [Hang, Hang, Starting, Ready]);
        let b = Behaviour {
            hang: true,
            ..Behaviour::default()
        };
        assert_eq!(answers(&b, true, 2), [Hang, Hang]);
    }

    #[test]
    fn garbage_only_when_otherwise_ready() {
        let b = Behaviour {
            garbage: true,
            fail_every: Some(2),
            ..Behaviour::default()
        };
        assert_eq!(answers(&b, true, 2), [Garbage, Degraded]);
        assert_eq!(answers(&b, false, 1), [Starting]);
    }

    fn respond(app: &App, head: &str) -> Response {
        let request = parse_head(head.as_bytes()).unwrap();
        match app.handle(&request, &Stats::default()) {
            Outcome::Respond(response) => response,
            Outcome::Hang => panic!("unexpected hang"),
        }
    }

    #[test]
    fn ready_responses_carry_the_configured_status() {
        let b = Behaviour {
            status_field: "failed".into(),
            fail_status: 500,
            fail_first: 1,
            retry_after: Some(4),
            ..Behaviour::default()
        };
        let app = App::new(b, Instant::now());
        let first = respond(&app, "GET /health/ready HTTP/1.1\r\n\r\n");
        assert_eq!(first.status, 503);
        assert_eq!(first.body, br#"{"status":"starting"}"#);
        assert_eq!(first.headers, [("Retry-After", "4".to_owned())]);
        let second = respond(&app, "HEAD /health/ready HTTP/1.1\r\n\r\n");
        assert_eq!(second.status, 500);
        assert_eq!(second.body, br#"{"status":"failed","version":"v1.0.0"}"#);
        assert!(second.headers.is_empty());
    }

    #[test]
    fn routes_and_methods() {
        let app = App::new(Behaviour::default(), Instant::now());
        assert_eq!(respond(&app, "GET /nope HTTP/1.1\r\n\r\n").status, 404);
        let post = respond(&app, "POST /health/live HTTP/1.1\r\n\r\n");
        assert_eq!(post.status, 405);
        let redirect = respond(
            &app,
            "GET /redirect?x=1&to=http%3A%2F%2Fa.test%2Fp%3Fq%3D1+2 HTTP/1.1\r\n\r\n",
        );
        assert_eq!(redirect.status, 302);
        assert_eq!(
            redirect.headers,
            [("Location", "http://a.test/p?q=1+2".to_owned())]
        );
        assert_eq!(
            respond(&app, "GET /redirect?to=a%0D%0Ab HTTP/1.1\r\n\r\n").status,
            400
        );
        assert_eq!(respond(&app, "GET /redirect HTTP/1.1\r\n\r\n").status, 400);
        assert_eq!(respond(&app, "GET /slow?ms=x HTTP/1.1\r\n\r\n").status, 400);
        assert_eq!(
            respond(&app, "GET /slow?ms=1 HTTP/1.1\r\n\r\n").body,
            br#"{"slept_ms":1}"#
        );
        let echo = respond(
            &app,
            "GET /debug/echo?a=b HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
        );
        assert_eq!(
            echo.body,
            br#"{"method":"GET","path":"/debug/echo","query":"a=b","headers":{"x-a":"1, 2"}}"#
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("a%20b%2fc%2F").as_deref(), Some("a b/c/"));
        assert_eq!(percent_decode("%C3%A9+x").as_deref(), Some("é+x"));
        assert_eq!(percent_decode(""), Some(String::new()));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn query_parameters() {
        assert_eq!(
            query_param(Some("a=1&to=x%2Fy"), "to"),
            Some(Ok("x/y".to_owned()))
        );
        assert_eq!(query_param(Some("t%6F=z"), "to"), Some(Ok("z".to_owned())));
        assert_eq!(query_param(Some("to"), "to"), Some(Ok(String::new())));
        assert_eq!(query_param(Some("to=%"), "to"), Some(Err(())));
        assert_eq!(query_param(Some("a=1"), "to"), None);
        assert_eq!(query_param(None, "to"), None);
    }
}
