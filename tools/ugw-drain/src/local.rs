//! The flag file and drain endpoint methods: tell the node itself to leave traffic (a file the
//! balancer's health check fails on, or the application's own endpoint), give the balancer
//! `--lb-grace` to notice, then wait until the application's in-flight gauge, or the
//! ESTABLISHED connections to its port, reach zero.

use crate::earlier::{self, Episode};
use crate::wait;
use crate::{Gauge, Local, Via, WaitPlan};
use std::path::Path;
use std::time::Instant;
use ugw_shared::http::{HttpClient, Request};
use ugw_shared::prometheus;
use ugw_shared::results::{DrainMethod, Drained};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// Answers of a drain endpoint beyond this are not read.
const HOOK_BODY_LIMIT: usize = 64 * 1024;

pub(crate) fn drain(ctx: &Ctx, local: &Local, plan: WaitPlan) -> Result<Drained> {
    let mut drained = state_before(ctx, &local.via)?;
    let Some(gauge) = &local.gauge else {
        return Err(Error::usage(
            "--flag-file and --http-post need --inflight-metric URL#NAME or --port N to know when work is done",
        ));
    };
    let client = HttpClient::new(local.http.clone(), ctx.scrubber())?;
    let reader = Reader::new(gauge, &client, ctx)?;
    drained.inflight_source = Some(reader.source());
    // Read once before changing anything: a gauge that cannot be read fails the step with
    // the node still in traffic.
    let count = reader.read(ctx.step_deadline())?;
    if ctx.dry_run {
        drained.inflight_start = Some(count);
        drained.inflight_end = Some(count);
        drained.readings = 1;
        drained.state_after.clone_from(&drained.state_before);
        ctx.reporter
            .info(&format!("{count} in flight; would drain"));
        return Ok(drained);
    }
    let since = Instant::now();
    // From here on the node may be out of traffic: every failure, an interruption included,
    // keeps what was done in the step's result, for the undo to find.
    leave_traffic(ctx, &local.via, &client, &mut drained)?;
    let deadline = ctx.step_deadline();
    if drained.changed && !local.lb_grace.is_zero() {
        ctx.reporter.info(&format!(
            "waiting {} for the balancer to notice",
            ugw_shared::time::human(local.lb_grace)
        ));
        ctx.cancel
            .sleep_until((Instant::now() + local.lb_grace).min(deadline))
            .map_err(kept_in(&drained))?;
    }
    let waited = wait::until_zero(
        ctx,
        plan,
        "node",
        since,
        |until| reader.read(until),
        |_| Ok(()),
    )
    .map_err(kept_in(&drained))?;
    waited.into_result(&mut drained, since);
    if waited.zero {
        ctx.reporter.info("drained");
        Ok(drained)
    } else {
        wait::timed_out(ctx, plan, drained, "node")
    }
}

/// What the drain starts from: the flag file's presence, or the endpoint checked.
fn state_before(ctx: &Ctx, via: &Via) -> Result<Drained> {
    Ok(match via {
        Via::FlagFile(path) => {
            let mut drained = wait::blank(DrainMethod::FlagFile, false);
            // By its canonical path: what an undo matches it by.
            drained.flag_file = Some(earlier::canonical_name(path).display().to_string());
            drained.state_before = Some(presence_to_drain(path)?.to_string());
            drained
        }
        Via::HttpPost(url) => {
            let mut drained = wait::blank(DrainMethod::HttpPost, false);
            ugw_shared::http::check_url(url, ctx.scrubber())?;
            drained.http_post = Some(url.clone());
            drained
        }
    })
}

/// Take the node out: create the flag file (unless it was there), or POST to the drain
/// endpoint. A failure keeps what was done in the step's result.
fn leave_traffic(ctx: &Ctx, via: &Via, client: &HttpClient, drained: &mut Drained) -> Result<()> {
    match via {
        Via::FlagFile(path) => {
            if drained.state_before.as_deref() == Some("absent") {
                ugw_shared::atomic::write_atomic(path, FLAG_TEXT)?;
                drained.changed = true;
                ctx.reporter.info(&format!("created {}", path.display()));
            }
            drained.state_after = Some("present".to_string());
        }
        Via::HttpPost(url) => {
            // A POST that failed may still have been taken: the result says it was sent.
            drained.state_after = Some("posted".to_string());
            post(ctx, client, url, "take the drain").map_err(kept_in(drained))?;
            drained.changed = true;
        }
    }
    Ok(())
}

/// An error with `drained` as the step's result (what the undo finds).
fn kept_in(drained: &Drained) -> impl FnOnce(Error) -> Error + use<> {
    let value = serde_json::to_value(drained).expect("a result serialises");
    move |e: Error| e.with_result(value)
}

pub(crate) fn undo(ctx: &Ctx, local: &Local) -> Result<Drained> {
    match &local.via {
        Via::FlagFile(path) => undo_flag(ctx, path),
        Via::HttpPost(url) => {
            ugw_shared::http::check_url(url, ctx.scrubber())?;
            let mut drained = wait::blank(DrainMethod::HttpPost, true);
            drained.http_post = Some(url.clone());
            if !ctx.dry_run {
                let client = HttpClient::new(local.http.clone(), ctx.scrubber())?;
                post(ctx, &client, url, "put the node back")?;
                drained.changed = true;
                drained.state_after = Some("posted".to_string());
            }
            Ok(drained)
        }
    }
}

/// What a drain writes into the flag file it creates: an undo removes a file only when it is
/// this one (a record naming any other file, forged or stale, never makes it delete that).
const FLAG_TEXT: &[u8] = b"drained by ugw-drain\n";

/// Put the flag file back as this run's drain of it found it: removed when that drain created
/// it, left when it was there before.
fn undo_flag(ctx: &Ctx, path: &Path) -> Result<Drained> {
    let identity = earlier::canonical_name(path);
    let mut drained = wait::blank(DrainMethod::FlagFile, true);
    drained.flag_file = Some(identity.display().to_string());
    let counted = earlier::counted(ctx)?;
    let episode = earlier::flag_state(&counted, &identity)?;
    if episode == Episode::Unknown {
        earlier::refuse_unmatched(ctx, &counted, &format!("flag file {}", identity.display()))?;
    }
    let now = presence(path)?;
    drained.state_before = Some(now.to_string());
    drained.state_after = Some(now.to_string());
    let our_file = match episode {
        Episode::Closed => return Ok(crate::undone_already(ctx, DrainMethod::FlagFile)),
        Episode::Open(true) => {
            ctx.reporter.info(&format!(
                "{} was there before the drain: left as it is",
                path.display()
            ));
            return Ok(drained);
        }
        Episode::Open(false) => true,
        // No drain in the record at all: the command line names the file.
        Episode::Unknown => false,
    };
    if now == "absent" {
        ctx.reporter
            .info(&format!("{} is gone already", path.display()));
        return Ok(drained);
    }
    if our_file && !written_by_a_drain(path)? {
        return Err(Error::usage(format!(
            "{} is not the flag file this run's drain created (it holds something else, or is \
             not a plain file): left as it is; remove it by hand if it is the flag",
            path.display()
        )));
    }
    drained.state_after = Some("absent".to_string());
    if ctx.dry_run {
        drained.state_after.clone_from(&drained.state_before);
        return Ok(drained);
    }
    std::fs::remove_file(path)
        .map_err(|e| Error::io(format!("cannot remove {}", path.display()), &e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ugw_shared::atomic::sync_dir(dir)?;
    }
    drained.changed = true;
    ctx.reporter.info(&format!("removed {}", path.display()));
    Ok(drained)
}

/// Whether `path` is a plain file holding exactly what a drain writes.
fn written_by_a_drain(path: &Path) -> Result<bool> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::io(format!("cannot look at {}", path.display()), &e))?;
    if !meta.is_file() || meta.len() != FLAG_TEXT.len() as u64 {
        return Ok(false);
    }
    let text = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
    Ok(text == FLAG_TEXT)
}

/// `presence`, for a drain: a symlink whose target does not exist is refused, since the
/// balancer's check follows it and sees no flag (the node would stay in traffic while the
/// drain waited as if it had left).
fn presence_to_drain(path: &Path) -> Result<&'static str> {
    let found = presence(path)?;
    if found == "present" {
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let target = std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(Error::usage(format!(
                    "--flag-file {} is a symlink to {target}, which does not exist: a health \
                     check that follows it sees no flag; remove the link or name another path",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::io(format!("cannot look at {}", path.display()), &e)),
        }
    }
    Ok(found)
}

/// Whether the flag file is there; a symlink counts as there (the balancer's check follows
/// it), anything unreadable is an error.
fn presence(path: &Path) -> Result<&'static str> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok("present"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("absent"),
        Err(e) => Err(Error::io(format!("cannot look at {}", path.display()), &e)),
    }
}

/// POST to the application's endpoint; anything but a 2xx fails the step, saying what the
/// application did not do (`take the drain`, `put the node back`).
fn post(ctx: &Ctx, client: &HttpClient, url: &str, what: &str) -> Result<()> {
    let request = Request::new(ugw_shared::http::Method::POST, url);
    let response = client
        .fetch_request(request, ctx.step_deadline(), HOOK_BODY_LIMIT, &ctx.cancel)
        .map_err(|e| {
            ctx.cancel
                .check()
                .err()
                .unwrap_or_else(|| Error::new(ErrorKind::Network, format!("POST {url}: {e}")))
        })?;
    if !(200..300).contains(&response.status) {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "POST {url} answered {} {}: the application did not {what}",
                response.status, response.reason
            ),
        ));
    }
    ctx.reporter
        .info(&format!("POST {url}: {}", response.status));
    Ok(())
}

/// Reads the work in flight one way.
struct Reader<'a> {
    gauge: &'a Gauge,
    client: &'a HttpClient,
    ctx: &'a Ctx,
}

impl<'a> Reader<'a> {
    fn new(gauge: &'a Gauge, client: &'a HttpClient, ctx: &'a Ctx) -> Result<Self> {
        if let Gauge::Metric { url, .. } = gauge {
            ugw_shared::http::check_url(url, ctx.scrubber())?;
        }
        Ok(Reader { gauge, client, ctx })
    }

    fn source(&self) -> String {
        match self.gauge {
            Gauge::Metric {
                url, selector_text, ..
            } => format!("metric {url}#{selector_text}"),
            Gauge::Port(port) => format!("port {port}"),
        }
    }

    fn read(&self, until: Instant) -> Result<u64> {
        match self.gauge {
            Gauge::Metric {
                url,
                selector,
                floor,
                ..
            } => {
                let exposition = prometheus::scrape(self.client, url, until, &self.ctx.cancel)
                    .map_err(|e| {
                        self.ctx.cancel.check().err().unwrap_or_else(|| {
                            let kind = if Instant::now() >= until {
                                ErrorKind::Timeout
                            } else {
                                ErrorKind::Network
                            };
                            Error::new(kind, e)
                        })
                    })?;
                let value = exposition.try_sum(selector).map_err(|e| {
                    Error::new(
                        ErrorKind::Network,
                        format!("{url}: {e}: a reading that is not a number is not zero"),
                    )
                })?;
                let Some(value) = value else {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "{url} has no sample of {selector}: is --inflight-metric the right gauge?"
                        ),
                    ));
                };
                // A gauge of work in flight is a finite count, never below zero: anything else
                // is a broken reading (whatever the parser keeps), not an idle node.
                if !value.is_finite() || value < 0.0 {
                    return Err(Error::new(
                        ErrorKind::Network,
                        format!(
                            "{url}: {selector} reads {value}, not a count of requests in flight"
                        ),
                    ));
                }
                Ok((value.round() as u64).saturating_sub(*floor))
            }
            Gauge::Port(port) => ugw_shared::proc_net::established_on_port(*port)
                .map_err(|e| Error::io("cannot read /proc/net/tcp", &e)),
        }
    }
}
