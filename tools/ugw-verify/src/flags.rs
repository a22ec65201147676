//! The checks given as flags: `--http URL` with the `--status`, `--expect` and
//! `--max-latency` after it (or, before the first `--http`, for every one), and `--cmd`. Each
//! is named after what it checks.

use crate::spec::{Check, CmdCheck, HttpCheck, Kind, Program};
use crate::template::Template;
use clap::ArgMatches;
use clap::parser::ValueSource;
use ugw_shared::http::{Method, StatusSet};
use ugw_shared::jq::JqExpr;
use ugw_shared::time::parse_duration;
use ugw_shared::{Error, Result};

/// The flags that belong to an `--http`.
const HTTP_FLAGS: [&str; 3] = ["status", "expect", "max-latency"];

pub fn checks(m: &ArgMatches) -> Result<Vec<Check>> {
    let urls = positioned(m, "http");
    if urls.is_empty()
        && let Some(id) = HTTP_FLAGS
            .into_iter()
            .find(|id| !positioned(m, id).is_empty())
    {
        return Err(Error::usage(format!(
            "--{id} applies to an --http check: give --http URL"
        )));
    }
    let starts: Vec<usize> = urls.iter().map(|(i, _)| *i).collect();
    let mut checks = Vec::new();
    for (n, (_, url)) in urls.iter().enumerate() {
        let own = |id: &str| values_for(m, id, &starts, n);
        let check = http(url, &own)?;
        checks.push(named(&checks, url, check));
    }
    for (_, command) in positioned(m, "cmd") {
        if command.trim().is_empty() {
            return Err(Error::usage("--cmd needs a command"));
        }
        let check = Check {
            origin: format!("--cmd '{command}'"),
            ..bare(Kind::Cmd(CmdCheck {
                program: Program::Shell(command.clone()),
                exit: 0,
                stdout_regex: None,
                expect: Vec::new(),
            }))
        };
        checks.push(named(&checks, &command, check));
    }
    Ok(checks)
}

/// An `--http` check from the values of its own flags.
fn http(url: &str, own: &dyn Fn(&str) -> Vec<String>) -> Result<Check> {
    let status_text = own("status").pop().unwrap_or_else(|| "200".into());
    let max_latency = own("max-latency")
        .pop()
        .map(|d| parse_duration(&d).map_err(Error::usage))
        .transpose()?;
    let expect = own("expect")
        .iter()
        .map(|e| JqExpr::compile(e, "--expect"))
        .collect::<Result<_>>()?;
    Ok(Check {
        origin: format!("--http {url}"),
        ..bare(Kind::Http(HttpCheck {
            url: Template::literal(url),
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            status: StatusSet::parse(&status_text, "--status")?,
            status_text,
            expect,
            body_regex: None,
            max_latency,
            samples: None,
            capture: Vec::new(),
        }))
    })
}

fn bare(kind: Kind) -> Check {
    Check {
        name: String::new(),
        origin: String::new(),
        timeout: None,
        after: Vec::new(),
        always: false,
        kind,
    }
}

/// The values of flag `id` given on the command line, with their positions.
fn positioned(m: &ArgMatches, id: &str) -> Vec<(usize, String)> {
    if m.value_source(id) != Some(ValueSource::CommandLine) {
        return Vec::new();
    }
    match (m.indices_of(id), m.get_raw(id)) {
        (Some(indices), Some(values)) => indices
            .zip(values.map(|v| v.to_string_lossy().into_owned()))
            .collect(),
        _ => Vec::new(),
    }
}

/// The values of `id` that apply to the `n`-th `--http` (which starts at `starts[n]`): those
/// before the first `--http`, and its own.
fn values_for(m: &ArgMatches, id: &str, starts: &[usize], n: usize) -> Vec<String> {
    let owner = |index: usize| starts.iter().rposition(|s| *s < index);
    positioned(m, id)
        .into_iter()
        .filter(|(i, _)| owner(*i).is_none_or(|o| o == n))
        .map(|(_, v)| v)
        .collect()
}

/// `check` named `name`, or `name (2)` when a check has that name already.
fn named(checks: &[Check], name: &str, check: Check) -> Check {
    let taken = |n: &str| checks.iter().any(|c| c.name == n);
    // One of the first len + 2 numbers is free: there are only len names.
    let name = std::iter::once(name.to_string())
        .chain((2..checks.len() + 3).map(|i| format!("{name} ({i})")))
        .find(|n| !taken(n))
        .expect("a free name");
    Check { name, ..check }
}
