//! What the demo service answers: its routes, and the failure modes that
//! make /health/ready misbehave on purpose so tests can drive every path of
//! a health checker. Failure modes key off the request count, not the
//! clock, so a test knows exactly which answer its n-th probe gets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::schema::Schema;
use crate::server::{DURATION_BUCKETS, Request, Response, Stats};

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
    /// While this file exists, /health/lb answers 503: the load balancer's signal to drain.
    pub lb_flag: Option<PathBuf>,
    /// Health endpoints want `Authorization: Bearer TOKEN`.
    pub health_token: Option<String>,
    /// /metrics wants `Authorization: Bearer TOKEN`, as a scrape behind auth does.
    pub metrics_token: Option<String>,
    /// Every K-th /work request answers 500 (by count, so a test knows how many fail).
    pub work_error_every: Option<u64>,
    /// MiB of memory held (and touched) for the process's life: a bloated release.
    pub bloat_mib: u64,
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
            lb_flag: None,
            health_token: None,
            metrics_token: None,
            work_error_every: None,
            bloat_mib: 0,
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
    started_wall: SystemTime,
    ready_requests: AtomicU64,
    work_requests: AtomicU64,
    items: Mutex<Items>,
    /// `--bloat`: held, never read; its pages were written so they count as resident.
    _ballast: Vec<u8>,
}

/// The in-memory resource a functional smoke test creates, reads back and deletes.
#[derive(Default)]
struct Items {
    last_id: u64,
    by_id: BTreeMap<u64, Value>,
}

const ROUTES: [&str; 8] = [
    "/health/ready",
    "/health/live",
    "/health/lb",
    "/metrics",
    "/debug/echo",
    "/redirect",
    "/slow",
    "/work",
];

impl App {
    pub fn new(behaviour: Behaviour, started: Instant, started_wall: SystemTime) -> Self {
        let ballast_bytes = usize::try_from(behaviour.bloat_mib << 20).unwrap_or(usize::MAX);
        App {
            _ballast: vec![0xa5; ballast_bytes],
            behaviour,
            started,
            started_wall,
            ready_requests: AtomicU64::new(0),
            work_requests: AtomicU64::new(0),
            items: Mutex::new(Items::default()),
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
        if path == "/items" || path.starts_with("/items/") {
            return Outcome::Respond(self.items(request));
        }
        if !ROUTES.contains(&path) {
            return Outcome::Respond(error(404, "not found"));
        }
        if request.method != "GET" && request.method != "HEAD" {
            return Outcome::Respond(
                error(405, "method not allowed").with_header("Allow", "GET, HEAD"),
            );
        }
        let token = if path.starts_with("/health/") {
            &self.behaviour.health_token
        } else if path == "/metrics" {
            &self.behaviour.metrics_token
        } else {
            &None
        };
        if !bearer_matches(request, token.as_deref()) {
            return Outcome::Respond(
                error(401, "a bearer token is required").with_header("WWW-Authenticate", "Bearer"),
            );
        }
        let response = match path {
            "/health/ready" => return self.ready(),
            "/health/live" => Response::json(200, &json!({ "status": "alive" })),
            "/health/lb" => self.lb(),
            "/work" => self.work(request.query.as_deref()),
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

    /// The load balancer's health check: unhealthy while the flag file exists, so a drain can
    /// take the node out of traffic without touching /health/ready (which a node that is
    /// coming back must pass).
    fn lb(&self) -> Response {
        match &self.behaviour.lb_flag {
            Some(flag) if flag.exists() => Response::json(503, &json!({ "status": "draining" })),
            _ => Response::json(200, &json!({ "status": "ok" })),
        }
    }

    /// A unit of work taking `ms` milliseconds; with `--error-every K`, every K-th fails.
    fn work(&self, query: Option<&str>) -> Response {
        let ms = match query_param(query, "ms") {
            None => 0,
            Some(Ok(ms)) => match ms.parse::<u64>() {
                Ok(ms) => ms,
                Err(_) => return error(400, "query parameter 'ms' must be a non-negative integer"),
            },
            Some(Err(())) => {
                return error(400, "query parameter 'ms' must be a non-negative integer");
            }
        };
        let n = self.work_requests.fetch_add(1, Ordering::SeqCst) + 1;
        thread::sleep(Duration::from_millis(ms));
        if self
            .behaviour
            .work_error_every
            .is_some_and(|k| n.is_multiple_of(k))
        {
            return Response::json(500, &json!({ "error": "injected failure", "n": n }));
        }
        Response::json(
            200,
            &json!({ "worked_ms": ms, "n": n, "version": self.behaviour.version_label }),
        )
    }

    /// `POST /items` (a JSON object) → 201 with its `id`; `GET /items/ID`; `DELETE /items/ID`.
    fn items(&self, request: &Request) -> Response {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        let id = request.path.strip_prefix("/items/");
        match (request.method.as_str(), id) {
            ("POST", None) => {
                let Ok(Value::Object(mut item)) = serde_json::from_slice::<Value>(&request.body)
                else {
                    return error(400, "the body must be a JSON object");
                };
                items.last_id += 1;
                let id = items.last_id;
                item.insert("id".into(), json!(id));
                let item = Value::Object(item);
                items.by_id.insert(id, item.clone());
                Response::json(201, &item).with_header("Location", format!("/items/{id}"))
            }
            ("GET" | "HEAD", None) => Response::json(
                200,
                &json!({ "items": items.by_id.values().collect::<Vec<_>>() }),
            ),
            ("GET" | "HEAD" | "DELETE", Some(id)) => {
                let Some(id) = id
                    .parse::<u64>()
                    .ok()
                    .filter(|id| items.by_id.contains_key(id))
                else {
                    return error(404, "no such item");
                };
                if request.method == "DELETE" {
                    items.by_id.remove(&id);
                    Response::json(200, &json!({ "deleted": id }))
                } else {
                    Response::json(200, &items.by_id[&id])
                }
            }
            (_, None) => error(405, "method not allowed").with_header("Allow", "GET, HEAD, POST"),
            (_, Some(_)) => {
                error(405, "method not allowed").with_header("Allow", "GET, HEAD, DELETE")
            }
        }
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
        write_durations(&mut text, stats);
        self.write_process(&mut text);
        Response::text(200, "text/plain; version=0.0.4; charset=utf-8", text)
    }
}

impl App {
    /// The process metrics every Prometheus client library exports, read from /proc.
    fn write_process(&self, text: &mut String) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        text.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
        text.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(text, "process_resident_memory_bytes {}", rss_kib * 1024);
        // /proc counts CPU time in USER_HZ ticks, which Linux fixes at 100 for user space.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        text.push_str(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n",
        );
        text.push_str("# TYPE process_cpu_seconds_total counter\n");
        let _ = writeln!(
            text,
            "process_cpu_seconds_total {:.2}",
            ticks as f64 / 100.0
        );
        let started_at = self
            .started_wall
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        text.push_str("# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n");
        text.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(text, "process_start_time_seconds {started_at:.3}");
    }
}

/// `http_request_duration_seconds` by route: cumulative buckets, sum and count.
fn write_durations(text: &mut String, stats: &Stats) {
    text.push_str("# HELP http_request_duration_seconds Time from a request's head to its response, by route.\n");
    text.push_str("# TYPE http_request_duration_seconds histogram\n");
    for (path, durations) in stats.durations() {
        let mut cumulative = 0;
        for (i, count) in durations.counts.iter().enumerate() {
            cumulative += count;
            let le = DURATION_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), ToString::to_string);
            let _ = writeln!(
                text,
                "http_request_duration_seconds_bucket{{path=\"{path}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            text,
            "http_request_duration_seconds_sum{{path=\"{path}\"}} {}",
            durations.sum_seconds
        );
        let _ = writeln!(
            text,
            "http_request_duration_seconds_count{{path=\"{path}\"}} {cumulative}"
        );
    }
}

/// Whether the request carries `Authorization: Bearer TOKEN` (any request, without a token).
fn bearer_matches(request: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given.trim() == token)
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
        let app = App::new(b, Instant::now(), SystemTime::now());
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
        let app = App::new(Behaviour::default(), Instant::now(), SystemTime::now());
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
