//! Whether a container Compose just started is healthy: Docker's own healthcheck when the
//! service has one, else `--restart-check URL` answering 2xx, else still running after
//! `--alive-for`. A container that exits, or that Docker marks unhealthy, fails at once.

use super::docker::docker;
use std::time::{Duration, Instant};
use ugw_shared::http::{HttpClient, HttpConfig, Request};
use ugw_shared::poll::{PollPlan, Poller};
use ugw_shared::{Ctx, Result};

/// How often the container is looked at.
const BEAT: Duration = Duration::from_millis(200);

/// How a container is judged healthy.
#[derive(Debug, Clone)]
pub(crate) struct HealthPlan {
    /// `--restart-check`, its `{port}` already replaced by the slot's port.
    pub url: Option<String>,
    pub alive_for: Duration,
    pub deadline: Instant,
}

/// One look at a container.
enum Seen {
    Healthy,
    NotYet(String),
    Failed(String),
}

/// `Ok(Ok(()))` when `container` became healthy before the deadline, `Ok(Err(why))` when it
/// did not.
pub(crate) fn wait_healthy(
    ctx: &Ctx,
    container: &str,
    plan: &HealthPlan,
) -> Result<std::result::Result<(), String>> {
    let started = Instant::now();
    let client = HttpClient::new(HttpConfig::default(), ctx.reporter.scrubber())?;
    let poll = PollPlan {
        timeout: plan.deadline.saturating_duration_since(started),
        interval: BEAT,
        max_interval: Some(BEAT),
        attempt_timeout: Duration::from_secs(5),
    };
    let mut poller = Poller::until(poll, started, plan.deadline);
    let mut last;
    loop {
        let until = poller.begin_round();
        match look(ctx, &client, container, plan, started, until)? {
            Seen::Healthy => return Ok(Ok(())),
            Seen::Failed(why) => return Ok(Err(why)),
            Seen::NotYet(why) => last = why,
        }
        if !poller.wait_next(false, None, &ctx.cancel)? {
            return Ok(Err(format!(
                "not healthy within {} ({last})",
                ugw_shared::time::human(started.elapsed())
            )));
        }
    }
}

fn look(
    ctx: &Ctx,
    client: &HttpClient,
    container: &str,
    plan: &HealthPlan,
    started: Instant,
    until: Instant,
) -> Result<Seen> {
    let state = docker(
        ctx,
        &[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            container,
        ],
        until.max(Instant::now() + Duration::from_secs(10)),
    )?;
    let mut words = state.split_whitespace();
    let (status, exit, health) = (
        words.next().unwrap_or(""),
        words.next().unwrap_or(""),
        words.next(),
    );
    if matches!(status, "exited" | "dead") {
        return Ok(Seen::Failed(format!(
            "the container {status} (exit {exit})"
        )));
    }
    match health {
        Some("healthy") => return Ok(Seen::Healthy),
        Some("unhealthy") => return Ok(Seen::Failed("Docker's healthcheck: unhealthy".into())),
        Some(other) => return Ok(Seen::NotYet(format!("Docker's healthcheck: {other}"))),
        None => {}
    }
    if let Some(url) = &plan.url {
        return Ok(match client.send(Request::get(url), until, &ctx.cancel) {
            Ok(answer) if (200..300).contains(&answer.status) => Seen::Healthy,
            Ok(answer) => Seen::NotYet(format!("{url} answered {}", answer.status)),
            Err(e) => Seen::NotYet(format!("{url}: {}", e.message)),
        });
    }
    if status == "running" && started.elapsed() >= plan.alive_for {
        return Ok(Seen::Healthy);
    }
    Ok(Seen::NotYet(format!("the container is {status}")))
}
