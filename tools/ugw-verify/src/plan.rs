//! The checks of a run: `--checks FILE` and the flags, read and validated as a whole before
//! anything is sent (a problem is exit 2, naming where it is).

use crate::spec::{self, Check, Env, ExpectVersion, Kind};
use crate::{CheckFlags, flags, template};
use ugw_shared::http;
use ugw_shared::results::FetchedVersion;
use ugw_shared::{Ctx, Error, Result};

/// The checks of `--checks FILE` and of the flags, validated as a whole.
pub fn load(ctx: &Ctx, given: &CheckFlags) -> Result<Vec<Check>> {
    let env = Env {
        scrubber: ctx.scrubber(),
    };
    let mut checks = Vec::new();
    if let Some(path) = &given.checks {
        let bytes = ugw_shared::atomic::read_capped(path, 16 << 20).map_err(|e| {
            Error::usage(format!("--checks {}: cannot read it ({e})", path.display()))
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::usage(format!("--checks {}: not UTF-8 text", path.display())))?;
        checks = spec::parse_file(&text, &path.display().to_string(), &env)?;
    }
    checks.extend(flags::checks(given)?);
    if checks.is_empty() {
        return Err(Error::usage(
            "no checks: give --checks FILE.json, --http URL or --cmd COMMAND",
        ));
    }
    for check in &mut checks {
        resolve_version(ctx, check)?;
        check_urls(ctx, check)?;
    }
    spec::check_graph(&checks)?;
    Ok(checks)
}

/// A versions check without `expect` wants the version of the last ugw-fetch step.
fn resolve_version(ctx: &Ctx, check: &mut Check) -> Result<()> {
    if let Kind::Versions(v) = &mut check.kind
        && v.expect == ExpectVersion::Fetched
    {
        let flag = format!("{}.expect", check.origin);
        let version =
            ctx.this_run()
                .flag_or_earlier(&flag, None, ctx.dry_run, |f: FetchedVersion| f.version)?;
        v.expect = version.map_or(ExpectVersion::Same, ExpectVersion::Exactly);
    }
    Ok(())
}

/// URLs that do not wait for a capture are checked now (and their secrets registered).
fn check_urls(ctx: &Ctx, check: &Check) -> Result<()> {
    let templates: Vec<&template::Template> = match &check.kind {
        Kind::Http(h) => vec![&h.url],
        Kind::Metrics(m) => vec![&m.url],
        Kind::Versions(v) => v.urls.iter().collect(),
        Kind::Tls(_) | Kind::Cmd(_) | Kind::Record(_) => Vec::new(),
    };
    for t in templates
        .into_iter()
        .filter(|t| t.captures().next().is_none())
    {
        let url = t
            .render(&std::collections::HashMap::new())
            .unwrap_or_default();
        http::check_url(&url, ctx.scrubber())
            .map_err(|e| Error::usage(format!("{}: {}", check.origin, e.message)))?;
    }
    Ok(())
}
