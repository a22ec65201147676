//! The checks given as flags: `--http URL` with the `--status`, `--expect` and
//! `--max-latency` after it (or, before the first `--http`, for every one), and `--cmd`. Each
//! is named after what it checks.

use crate::CheckFlags;
use crate::spec::{Check, CmdCheck, HttpCheck, Kind, Program};
use crate::template::Template;
use ugw_shared::http::expect::DEFAULT_STATUS;
use ugw_shared::http::scoped::Scopes;
use ugw_shared::http::{Expectations, GivenAs, Method, StatusSet};
use ugw_shared::jq::JqExpr;
use ugw_shared::{Error, Result};

pub fn checks(given: &CheckFlags) -> Result<Vec<Check>> {
    if given.http.is_empty()
        && let Some(flag) = [
            (CheckFlags::STATUS, given.status.is_empty()),
            (CheckFlags::EXPECT, given.expect.is_empty()),
            (CheckFlags::MAX_LATENCY, given.max_latency.is_empty()),
        ]
        .into_iter()
        .find_map(|(flag, none)| (!none).then_some(flag))
    {
        return Err(Error::usage(format!(
            "--{flag} applies to an --http check: give --http URL"
        )));
    }
    let scopes = Scopes::new(given.http.iter().map(|p| p.index).collect());
    let mut checks = Vec::new();
    for (n, url) in given.http.iter().enumerate() {
        let check = http(&url.value, given, &scopes, n)?;
        checks.push(named(&checks, &url.value, check));
    }
    for command in given.cmd.iter().map(|p| &p.value) {
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
        checks.push(named(&checks, command, check));
    }
    Ok(checks)
}

/// The `n`-th `--http` check, with the flags that apply to it (its own, and those before
/// the first `--http`).
fn http(url: &str, given: &CheckFlags, scopes: &Scopes, n: usize) -> Result<Check> {
    let status = scopes.one_for(&given.status, n);
    let expect = scopes
        .values_for(&given.expect, n)
        .iter()
        .map(|e| JqExpr::compile(e, "--expect"))
        .collect::<Result<_>>()?;
    let expect = Expectations {
        status: StatusSet::parse(status.as_deref().unwrap_or(DEFAULT_STATUS), "--status")?,
        max_latency: scopes.one_for(&given.max_latency, n),
        body_regex: Vec::new(),
        expect,
        given_as: GivenAs::Flags,
    };
    Ok(Check {
        origin: format!("--http {url}"),
        ..bare(Kind::Http(HttpCheck {
            url: Template::literal(url),
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            expect,
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
