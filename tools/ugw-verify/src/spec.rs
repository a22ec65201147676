//! The checks, as read from `--checks FILE.json` and the check flags, and everything wrong
//! with them found before the first request: each problem names its JSON path
//! (`$.checks[2].timeout`), so a typo in a 40-check file is found in one look.

use crate::template::Template;
use regex::Regex;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;
use ugw_shared::http::expect::DEFAULT_STATUS;
use ugw_shared::http::{Expectations, GivenAs, Method, StatusSet};
use ugw_shared::jq::JqExpr;
use ugw_shared::scrub::Scrubber;
use ugw_shared::time::parse_duration;
use ugw_shared::{Error, Result};

/// What a check is made of, whatever its type.
#[derive(Debug)]
pub struct Check {
    pub name: String,
    /// Where it was defined, for messages (`$.checks[2]`, `--http #1`).
    pub origin: String,
    pub timeout: Option<Duration>,
    pub after: Vec<String>,
    pub always: bool,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    Http(HttpCheck),
    Tls(TlsCheck),
    Cmd(CmdCheck),
    Metrics(MetricsCheck),
    Versions(VersionsCheck),
    /// jq expectations on the incoming record.
    Record(Vec<JqExpr>),
}

impl Kind {
    pub fn word(&self) -> &'static str {
        match self {
            Kind::Http(_) => "http",
            Kind::Tls(_) => "tls",
            Kind::Cmd(_) => "cmd",
            Kind::Metrics(_) => "metrics",
            Kind::Versions(_) => "versions",
            Kind::Record(_) => "record",
        }
    }
}

impl Check {
    /// A latency check sends many requests and times them: it runs alone, so that no other
    /// check's traffic (or CPU) is in its figures.
    pub fn measures_latency(&self) -> bool {
        matches!(&self.kind, Kind::Http(h) if h.samples.is_some())
    }

    /// Whether it leaves observations a baseline keeps.
    pub fn is_measuring(&self) -> bool {
        match &self.kind {
            Kind::Http(h) => h.samples.is_some(),
            Kind::Metrics(m) => !m.measure.is_empty(),
            _ => false,
        }
    }

    /// The captures this check's templates read.
    pub fn reads_captures(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut add = |t: &Template| names.extend(t.captures().map(str::to_string));
        match &self.kind {
            Kind::Http(h) => {
                add(&h.url);
                h.headers.iter().for_each(|(_, v)| add(v));
                if let Some(body) = &h.body {
                    add(body);
                }
            }
            Kind::Metrics(m) => {
                add(&m.url);
                m.headers.iter().for_each(|(_, v)| add(v));
            }
            Kind::Versions(v) => {
                v.urls.iter().for_each(&mut add);
                v.headers.iter().for_each(|(_, v)| add(v));
            }
            Kind::Cmd(_) | Kind::Tls(_) | Kind::Record(_) => {}
        }
        names
    }

    /// The default of `timeout`: long enough for what the check does.
    pub fn default_timeout(&self) -> Duration {
        match &self.kind {
            Kind::Http(h) if h.samples.is_some() => Duration::from_secs(60),
            Kind::Metrics(m) => m.window.unwrap_or_default() + Duration::from_secs(10),
            _ => Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
pub struct HttpCheck {
    pub url: Template,
    pub method: Method,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
    /// What the answer must show (status, jq, regex, latency), judged as ugw-wait-healthy
    /// judges a `--url`.
    pub expect: Expectations,
    pub samples: Option<Samples>,
    pub capture: Vec<(String, JqExpr)>,
}

/// `samples`: N requests one after another, judged on their latency percentiles and errors.
#[derive(Debug)]
pub struct Samples {
    pub count: u32,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub max_errors: u32,
    /// Fewer answered requests than this is `insufficient_data`, never a pass.
    #[expect(clippy::struct_field_names, reason = "the checks file's own word")]
    pub min_samples: u32,
}

#[derive(Debug)]
pub struct TlsCheck {
    pub host: String,
    pub port: u16,
    pub server_name: String,
    pub min_days: i64,
    pub cacert: Option<PathBuf>,
}

#[derive(Debug)]
pub enum Program {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug)]
pub struct CmdCheck {
    pub program: Program,
    pub exit: i32,
    pub stdout_regex: Option<Regex>,
    pub expect: Vec<JqExpr>,
}

#[derive(Debug)]
pub struct MetricsCheck {
    pub url: Template,
    /// For an endpoint behind a token (`${env:NAME}` and captures work as in `http`).
    pub headers: Vec<(String, Template)>,
    /// `process_resident_memory_bytes <= 512MiB`, parsed by `metrics`.
    pub asserts: Vec<crate::metrics::Assertion>,
    pub histogram: Option<HistogramBound>,
    pub window: Option<Duration>,
    pub measure: Vec<Measure>,
    pub min_samples: u32,
}

/// `histogram` + `quantile` + `max`: the server's own view of its latency.
#[derive(Debug)]
pub struct HistogramBound {
    pub selector: ugw_shared::prometheus::Selector,
    pub quantile: f64,
    pub max: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Latency,
    Errors,
    Memory,
}

#[derive(Debug)]
pub struct VersionsCheck {
    pub urls: Vec<Template>,
    pub path: JqExpr,
    pub expect: ExpectVersion,
    pub headers: Vec<(String, Template)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectVersion {
    /// This version (`v1.1.0` = `1.1.0`).
    Exactly(String),
    /// All equal each other.
    Same,
    /// The version of the last ugw-fetch step (resolved when the checks are planned).
    Fetched,
}

/// The least number of samples a percentile or a ratio is judged on by default: with fewer,
/// p95 is only the slowest request.
pub const MIN_SAMPLES: u32 = 20;

/// A JSON object being read, with its path; every key must be read (a misspelt key is an
/// error, not a silently ignored assertion).
struct Fields<'a> {
    path: String,
    map: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

fn problem(path: &str, what: impl std::fmt::Display) -> Error {
    Error::usage(format!("{path}: {what}"))
}

impl<'a> Fields<'a> {
    fn new(path: String, value: &'a Value) -> Result<Self> {
        let map = value
            .as_object()
            .ok_or_else(|| problem(&path, "expected an object"))?;
        Ok(Fields {
            path,
            map,
            read: Vec::new(),
        })
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.read.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(problem(&self.at(key), "expected a string")),
        }
    }

    fn required(&mut self, key: &'static str) -> Result<String> {
        self.string(key)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| problem(&self.at(key), "is required"))
    }

    fn duration(&mut self, key: &'static str) -> Result<Option<Duration>> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        let d = parse_duration(&text).map_err(|e| problem(&self.at(key), e))?;
        if d.is_zero() {
            return Err(problem(&self.at(key), "must be more than 0"));
        }
        Ok(Some(d))
    }

    fn uint(&mut self, key: &'static str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| problem(&self.at(key), "expected a whole number, 0 or more")),
        }
    }

    fn bool(&mut self, key: &'static str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(problem(&self.at(key), "expected true or false")),
        }
    }

    fn strings(&mut self, key: &'static str) -> Result<Vec<String>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        problem(&format!("{}[{i}]", self.at(key)), "expected a string")
                    })
                })
                .collect(),
            Some(_) => Err(problem(&self.at(key), "expected a list of strings")),
        }
    }

    fn jq_list(&mut self, key: &'static str) -> Result<Vec<JqExpr>> {
        let at = self.at(key);
        self.strings(key)?
            .iter()
            .enumerate()
            .map(|(i, e)| JqExpr::compile(e, &format!("{at}[{i}]")))
            .collect()
    }

    fn regex(&mut self, key: &'static str) -> Result<Option<Regex>> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        regex::RegexBuilder::new(&text)
            .multi_line(true)
            .build()
            .map(Some)
            .map_err(|e| {
                problem(
                    &self.at(key),
                    format!("not a valid regular expression: {e}"),
                )
            })
    }

    fn headers(&mut self, key: &'static str, env: &Env) -> Result<Vec<(String, Template)>> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let at = self.at(key);
        let map = value
            .as_object()
            .ok_or_else(|| problem(&at, "expected an object of header names and values"))?;
        map.iter()
            .map(|(name, v)| {
                let path = format!("{at}[\"{name}\"]");
                let text = v
                    .as_str()
                    .ok_or_else(|| problem(&path, "expected a string"))?;
                // Every `${env:…}` value in a header is a secret (ugw(7)), whatever the
                // header is called: `X-Signature` is no secret word, yet it carries one.
                Ok((name.clone(), Template::parse(text, &path, env, true)?))
            })
            .collect()
    }

    /// Every key was read: anything else is a typo.
    fn finish(self) -> Result<()> {
        match self.map.keys().find(|k| !self.read.contains(&k.as_str())) {
            Some(key) => Err(problem(
                &self.at(key),
                format!("unknown field (known here: {})", self.read.join(", ")),
            )),
            None => Ok(()),
        }
    }
}

/// Where `${env:NAME}` is looked up, and where its values are registered as secrets.
pub struct Env<'a> {
    pub scrubber: &'a Scrubber,
}

/// The checks of a checks file: `{"checks": [...]}` or a bare list.
pub fn parse_file(text: &str, file: &str, env: &Env) -> Result<Vec<Check>> {
    let value: Value = crate::strict_json::parse(text).map_err(|e| {
        if e.is_data() {
            // A key given twice: the message starts with its path.
            Error::usage(format!("{file}: {e}"))
        } else {
            Error::usage(format!(
                "{file}: not JSON ({e}); expected {{\"checks\": [...]}}"
            ))
        }
    })?;
    let (list, path) = match &value {
        Value::Array(list) => (list, "$".to_string()),
        Value::Object(map) => {
            if let Some(key) = map.keys().find(|k| *k != "checks") {
                return Err(problem(
                    &format!("{file}: $.{key}"),
                    "unknown field (the file has one: checks)",
                ));
            }
            match map.get("checks") {
                Some(Value::Array(list)) => (list, "$.checks".to_string()),
                _ => {
                    return Err(problem(
                        &format!("{file}: $.checks"),
                        "expected a list of checks",
                    ));
                }
            }
        }
        _ => {
            return Err(problem(
                &format!("{file}: $"),
                "expected {\"checks\": [...]}",
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_check(v, format!("{file}: {path}[{i}]"), env))
        .collect()
}

fn parse_check(value: &Value, path: String, env: &Env) -> Result<Check> {
    let mut f = Fields::new(path.clone(), value)?;
    let name = f.required("name")?;
    let kind_word = f.required("type")?;
    let timeout = f.duration("timeout")?;
    let after = f.strings("after")?;
    let always = f.bool("always")?;
    let kind = match kind_word.as_str() {
        "http" => Kind::Http(http(&mut f, env)?),
        "tls" => Kind::Tls(tls(&mut f)?),
        "cmd" => Kind::Cmd(cmd(&mut f)?),
        "metrics" => Kind::Metrics(metrics(&mut f, env)?),
        "versions" => Kind::Versions(versions(&mut f, env)?),
        "record" => Kind::Record(record(&mut f)?),
        other => {
            return Err(problem(
                &f.at("type"),
                format!(
                    "'{other}' is not a check type (http, tls, cmd, metrics, versions, record)"
                ),
            ));
        }
    };
    f.finish()?;
    Ok(Check {
        name,
        origin: path,
        timeout,
        after,
        always,
        kind,
    })
}

fn http(f: &mut Fields, env: &Env) -> Result<HttpCheck> {
    let url = Template::parse(&f.required("url")?, &f.at("url"), env, false)?;
    let method_text = f.string("method")?.unwrap_or_else(|| "GET".into());
    let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
        problem(
            &f.at("method"),
            format!("'{method_text}' is not an HTTP method"),
        )
    })?;
    let mut headers = f.headers("headers", env)?;
    let body = body(f, env, &mut headers)?;
    let status_text = match f.get("status") {
        None => DEFAULT_STATUS.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(problem(
                &f.at("status"),
                "expected a status such as 200 or \"2xx\"",
            ));
        }
    };
    let status = StatusSet::parse(&status_text, "status")
        .map_err(|e| problem(&f.at("status"), e.message))?;
    let expect = f.jq_list("expect")?;
    let body_regex = f.regex("body_regex")?;
    let max_latency = f.duration("max_latency")?;
    let samples = samples(f)?;
    let capture = capture(f)?;
    let single = !expect.is_empty() || body_regex.is_some() || max_latency.is_some();
    let expect = Expectations {
        status,
        max_latency,
        body_regex: body_regex.into_iter().collect(),
        expect,
        given_as: GivenAs::File,
    };
    if samples.is_some() && (single || !capture.is_empty()) {
        return Err(problem(
            &f.at("samples"),
            "samples are judged on status, p50, p95 and errors; expect, body_regex, max_latency \
             and capture go in a check of their own",
        ));
    }
    Ok(HttpCheck {
        url,
        method,
        headers,
        body,
        expect,
        samples,
        capture,
    })
}

/// `body`: text as it is, JSON sent as JSON (with its content type, unless one is given).
fn body(
    f: &mut Fields,
    env: &Env,
    headers: &mut Vec<(String, Template)>,
) -> Result<Option<Template>> {
    let text = match f.get("body") {
        None => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(json) => {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), Template::literal("application/json")));
            }
            json.to_string()
        }
    };
    Template::parse(&text, &f.at("body"), env, false).map(Some)
}

/// `capture`: `{"NAME": ".jq.path"}`, values for later checks.
fn capture(f: &mut Fields) -> Result<Vec<(String, JqExpr)>> {
    let at = f.at("capture");
    match f.get("capture") {
        None => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, path)| {
                let at = format!("{at}.{name}");
                let text = path
                    .as_str()
                    .ok_or_else(|| problem(&at, "expected a jq path such as .id"))?;
                Ok((name.clone(), JqExpr::compile(text, &at)?))
            })
            .collect(),
        Some(_) => Err(problem(&at, "expected {\"NAME\": \".jq.path\"}")),
    }
}

fn samples(f: &mut Fields) -> Result<Option<Samples>> {
    let count = f.uint("samples")?;
    let p50 = f.duration("p50")?;
    let p95 = f.duration("p95")?;
    let max_errors = f.uint("max_errors")?;
    let min_samples = f.uint("min_samples")?;
    let Some(count) = count else {
        if p50.is_some() || p95.is_some() || max_errors.is_some() || min_samples.is_some() {
            return Err(problem(
                &f.at("samples"),
                "p50, p95, max_errors and min_samples judge samples: give samples (a number of requests)",
            ));
        }
        return Ok(None);
    };
    if !(1..=100_000).contains(&count) {
        return Err(problem(&f.at("samples"), "expected 1 to 100000 requests"));
    }
    let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let min_samples = min_samples.map_or(MIN_SAMPLES, small).max(1);
    // It could never be judged: every request would be sent for an insufficient_data.
    if small(count) < min_samples {
        return Err(problem(
            &f.at("samples"),
            format!(
                "{count} requests are fewer than min_samples ({min_samples}): too few to judge \
                 any run; send at least {min_samples} or lower min_samples"
            ),
        ));
    }
    Ok(Some(Samples {
        count: small(count),
        p50,
        p95,
        max_errors: max_errors.map_or(0, small),
        min_samples,
    }))
}

fn tls(f: &mut Fields) -> Result<TlsCheck> {
    let host = f.required("host")?;
    let port = match f.uint("port")? {
        None => 443,
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| problem(&f.at("port"), "a port is 1 to 65535"))?,
    };
    let server_name = f.string("server_name")?.unwrap_or_else(|| host.clone());
    let min_days = match f.get("min_days") {
        None => 14,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| problem(&f.at("min_days"), "expected a whole number of days"))?,
    };
    let cacert = f.string("cacert")?.map(PathBuf::from);
    Ok(TlsCheck {
        host,
        port,
        server_name,
        min_days,
        cacert,
    })
}

fn cmd(f: &mut Fields) -> Result<CmdCheck> {
    let command = f.string("command")?;
    let argv = f.strings("argv")?;
    let program = match (command, argv.is_empty()) {
        (Some(c), true) if !c.trim().is_empty() => Program::Shell(c),
        (None, false) => Program::Argv(argv),
        (Some(_), false) => return Err(problem(&f.at("argv"), "give command or argv, not both")),
        _ => return Err(problem(&f.at("command"), "is required (or argv)")),
    };
    let exit = match f.get("exit") {
        None => 0,
        Some(v) => v
            .as_i64()
            .and_then(|e| i32::try_from(e).ok())
            .filter(|e| (0..=255).contains(e))
            .ok_or_else(|| problem(&f.at("exit"), "expected an exit code, 0 to 255"))?,
    };
    Ok(CmdCheck {
        program,
        exit,
        stdout_regex: f.regex("stdout_regex")?,
        expect: f.jq_list("expect")?,
    })
}

fn metrics(f: &mut Fields, env: &Env) -> Result<MetricsCheck> {
    let url = Template::parse(&f.required("url")?, &f.at("url"), env, false)?;
    let headers = f.headers("headers", env)?;
    let asserts = f
        .strings("assert")?
        .iter()
        .enumerate()
        .map(|(i, text)| {
            crate::metrics::Assertion::parse(text)
                .map_err(|why| problem(&format!("{}[{i}]", f.at("assert")), why))
        })
        .collect::<Result<Vec<_>>>()?;
    let histogram = histogram(f)?;
    let window = f.duration("window")?;
    let measure = measures(f)?;
    let min_samples = f
        .uint("min_samples")?
        .map_or(MIN_SAMPLES, |n| u32::try_from(n).unwrap_or(u32::MAX));
    if histogram.is_none() && f.map.contains_key("quantile") {
        return Err(problem(&f.at("quantile"), "quantile goes with histogram"));
    }
    if asserts.is_empty() && histogram.is_none() && measure.is_empty() {
        return Err(problem(
            &f.path,
            "a metrics check needs assert, histogram or measure",
        ));
    }
    Ok(MetricsCheck {
        url,
        headers,
        asserts,
        histogram,
        window,
        measure,
        min_samples: min_samples.max(1),
    })
}

/// `histogram` with `quantile` (0.95) and `max`.
fn histogram(f: &mut Fields) -> Result<Option<HistogramBound>> {
    let Some(selector) = f.string("histogram")? else {
        return Ok(None);
    };
    let selector = ugw_shared::prometheus::Selector::parse(&selector)
        .map_err(|why| problem(&f.at("histogram"), why))?;
    let quantile = match f.get("quantile") {
        None => 0.95,
        Some(v) => v.as_f64().filter(|q| *q > 0.0 && *q < 1.0).ok_or_else(|| {
            problem(
                &f.at("quantile"),
                "expected a number between 0 and 1, such as 0.95",
            )
        })?,
    };
    let max = f
        .duration("max")?
        .ok_or_else(|| problem(&f.at("max"), "is required with histogram (e.g. \"250ms\")"))?;
    Ok(Some(HistogramBound {
        selector,
        quantile,
        max,
    }))
}

/// `measure`: what a baseline keeps of a metrics check.
fn measures(f: &mut Fields) -> Result<Vec<Measure>> {
    let at = f.at("measure");
    f.strings("measure")?
        .iter()
        .enumerate()
        .map(|(i, word)| match word.as_str() {
            "latency" => Ok(Measure::Latency),
            "errors" => Ok(Measure::Errors),
            "memory" => Ok(Measure::Memory),
            other => Err(problem(
                &format!("{at}[{i}]"),
                format!("'{other}' is not a measure (latency, errors, memory)"),
            )),
        })
        .collect()
}

fn versions(f: &mut Fields, env: &Env) -> Result<VersionsCheck> {
    let at = f.at("urls");
    let urls = f
        .strings("urls")?
        .iter()
        .enumerate()
        .map(|(i, u)| Template::parse(u, &format!("{at}[{i}]"), env, false))
        .collect::<Result<Vec<_>>>()?;
    if urls.is_empty() {
        return Err(problem(&at, "is required: the URLs of the nodes"));
    }
    let path_text = f.string("path")?.unwrap_or_else(|| ".version".into());
    let path = JqExpr::compile(&path_text, &f.at("path"))?;
    let expect = match f.string("expect")? {
        None => ExpectVersion::Fetched,
        Some(s) if s == "same" => ExpectVersion::Same,
        Some(s) => ExpectVersion::Exactly(s),
    };
    Ok(VersionsCheck {
        urls,
        path,
        expect,
        headers: f.headers("headers", env)?,
    })
}

/// `expect`: jq expressions on the incoming record, all of which must be true.
fn record(f: &mut Fields) -> Result<Vec<JqExpr>> {
    let expect = f.jq_list("expect")?;
    if expect.is_empty() {
        return Err(problem(
            &f.at("expect"),
            "is required: jq expressions on the record",
        ));
    }
    Ok(expect)
}

/// The problems only visible across checks: duplicate names, `after` naming no check or the
/// check itself, a capture nobody else makes, a name two checks capture, a cycle.
pub fn check_graph(checks: &[Check]) -> Result<()> {
    for (i, check) in checks.iter().enumerate() {
        for name in captures(check) {
            if let Some(first) = checks[..i].iter().find(|c| captures(c).any(|n| n == name)) {
                return Err(problem(
                    &format!("{}.capture.{name}", check.origin),
                    format!(
                        "'{name}' is captured by {} too: which value ${{capture:{name}}} reads \
                         would depend on which ran last; give one of them another name",
                        first.origin
                    ),
                ));
            }
        }
        if let Some(first) = checks[..i].iter().find(|c| c.name == check.name) {
            return Err(problem(
                &format!("{}.name", check.origin),
                format!(
                    "'{}' is also the name of {}: names must be unique",
                    check.name, first.origin
                ),
            ));
        }
        for (j, dep) in check.after.iter().enumerate() {
            if *dep == check.name {
                return Err(problem(
                    &format!("{}.after[{j}]", check.origin),
                    format!("'{dep}' is this check itself: a check cannot run after itself"),
                ));
            }
            if !checks.iter().any(|c| &c.name == dep) {
                return Err(problem(
                    &format!("{}.after[{j}]", check.origin),
                    format!("no check is named '{dep}'"),
                ));
            }
        }
        for name in check.reads_captures() {
            if captures(check).any(|n| n == name) {
                return Err(problem(
                    &check.origin,
                    format!(
                        "${{capture:{name}}}: '{}' reads the value it captures itself, which is \
                         made only after its request is sent; capture it in an earlier check",
                        check.name
                    ),
                ));
            }
            if !checks.iter().any(|c| captures(c).any(|n| n == name)) {
                return Err(problem(
                    &check.origin,
                    format!(
                        "${{capture:{name}}}: no check captures '{name}' (\"capture\": {{\"{name}\": \".path\"}})"
                    ),
                ));
            }
        }
    }
    if let Some(cycle) = crate::schedule::find_cycle(checks) {
        return Err(Error::usage(format!(
            "the checks depend on each other in a circle: {}",
            cycle.join(" -> ")
        )));
    }
    Ok(())
}

/// The names of the values `check` captures.
pub fn captures(check: &Check) -> impl Iterator<Item = &str> {
    let list: &[(String, JqExpr)] = match &check.kind {
        Kind::Http(h) => &h.capture,
        _ => &[],
    };
    list.iter().map(|(n, _)| n.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Check>> {
        let scrubber = Scrubber::default();
        let checks = parse_file(
            text,
            "c.json",
            &Env {
                scrubber: &scrubber,
            },
        )?;
        check_graph(&checks)?;
        Ok(checks)
    }

    fn problem_of(text: &str) -> String {
        parse(text).unwrap_err().message
    }

    #[test]
    fn every_problem_names_its_json_path() {
        for (text, path) in [
            (
                r#"{"checks":[{"name":"a","type":"http"}]}"#,
                "c.json: $.checks[0].url: is required",
            ),
            (
                r#"[{"name":"a","type":"cmd","command":"true","timeout":"5"}]"#,
                "c.json: $[0].timeout: '5' has no unit",
            ),
            (
                r#"{"checks":[{"name":"a","type":"cmd","command":"x"},{"name":"b","type":"http","url":"http://h/","expect":[".a =="]}]}"#,
                "c.json: $.checks[1].expect[0]",
            ),
            (
                r#"{"checks":[{"name":"a","type":"http","url":"http://h/","stauts":200}]}"#,
                "c.json: $.checks[0].stauts: unknown field",
            ),
            (
                r#"{"checks":[{"name":"a","type":"cmd","command":"x","after":["b"]}]}"#,
                "c.json: $.checks[0].after[0]: no check is named 'b'",
            ),
            (
                r#"{"checks":[{"name":"a","type":"metrics","url":"http://h/","assert":["up >< 1"]}]}"#,
                "c.json: $.checks[0].assert[0]",
            ),
            (
                r#"{"checks":[{"name":"a","type":"cmd","command":"x"},{"name":"a","type":"cmd","command":"y"}]}"#,
                "c.json: $.checks[1].name: 'a' is also the name of c.json: $.checks[0]",
            ),
            (
                r#"{"checks":[{"name":"a","type":"smtp"}]}"#,
                "c.json: $.checks[0].type: 'smtp' is not a check type",
            ),
            (
                r#"{"checks":[{"name":"a","type":"http","url":"http://h/${capture:id}"}]}"#,
                "${capture:id}: no check captures 'id'",
            ),
            (r#"{"check":[]}"#, "c.json: $.check: unknown field"),
            (
                r#"[{"name":"a","type":"http","url":"http://h/${capture:id}","capture":{"id":".id"}}]"#,
                "c.json: $[0]: ${capture:id}: 'a' reads the value it captures itself",
            ),
            (
                r#"[{"name":"a","type":"cmd","command":"x","after":["a"]}]"#,
                "c.json: $[0].after[0]: 'a' is this check itself",
            ),
            (
                r#"[{"name":"a","type":"http","url":"http://h/","expect":[".a"],"expect":[".b"]}]"#,
                "c.json: $[0].expect: the key is given twice",
            ),
            (
                r#"{"checks":[{"name":"a","type":"http","url":"http://h/","capture":{"id":".id"}},{"name":"b","type":"http","url":"http://h/","capture":{"id":".x"}}]}"#,
                "c.json: $.checks[1].capture.id: 'id' is captured by c.json: $.checks[0] too",
            ),
            (
                r#"[{"name":"a","type":"http","url":"http://h/","samples":5}]"#,
                "c.json: $[0].samples: 5 requests are fewer than min_samples (20)",
            ),
            (
                r#"[{"name":"a","type":"http","url":"http://h/","samples":30,"min_samples":40}]"#,
                "c.json: $[0].samples: 30 requests are fewer than min_samples (40)",
            ),
            (
                r#"[{"name":"a","type":"http","url":"http://h/","samples":50,"expect":[".a"]}]"#,
                "c.json: $[0].samples: samples are judged",
            ),
        ] {
            let message = problem_of(text);
            assert!(message.contains(path), "{message}\n wanted {path}");
        }
    }

    #[test]
    fn a_circle_of_dependencies_is_refused() {
        let message = problem_of(
            r#"[{"name":"a","type":"cmd","command":"x","after":["b"]},{"name":"b","type":"cmd","command":"x","after":["a"]}]"#,
        );
        assert!(message.contains("circle: a -> b -> a"), "{message}");
    }

    #[test]
    fn a_json_body_is_sent_as_json_with_its_content_type() {
        let checks = parse(r#"[{"name":"c","type":"http","method":"post","url":"http://h/items","body":{"n":1},"status":201,"capture":{"id":".id"}}]"#).unwrap();
        let Kind::Http(h) = &checks[0].kind else {
            panic!()
        };
        assert_eq!(h.method, Method::POST);
        assert!(h.expect.status.contains(201) && !h.expect.status.contains(200));
        assert_eq!(h.headers[0].0, "Content-Type");
        assert_eq!(captures(&checks[0]).collect::<Vec<_>>(), ["id"]);
    }
}
