//! ugw-swap: replaces `install -m 755 /tmp/app-new /usr/local/bin/app` and `mv app.bak app`.
//! It switches the live release in one rename (a `current` symlink in a releases folder, or
//! a binary replaced beside itself), restarts, switches back when the restart fails, and
//! rolls back on a failed run.
#![forbid(unsafe_code)]

mod artifact;
mod binary;
mod compose;
mod link_at;
mod pending;
mod place;
mod releases;
mod restart;
mod start;
mod this_run;

use clap::{ArgGroup, ArgMatches, Command};
use std::path::PathBuf;
use std::time::Duration;
use ugw_shared::cli::flag;
use ugw_shared::results::{FetchPlanned, Fetched, Swapped};
use ugw_shared::{Ctx, Error, Result, StepResult, tool_command};

/// Flag and subcommand ids: each named once, for the command and for [`Options`].
mod id {
    ugw_shared::flag_ids! {
        STATUS,
        ROOT, TARGET, FROM, RELEASE, LINK, MODE, FORCE,
        RESTART, FORCE_RESTART, RESTART_TIMEOUT, START, PIDFILE, LOG, STOP_TIMEOUT, ALIVE_FOR,
        /// The group of the two ways to restart (`--restart`, `--start`).
        RESTARTER,
        ROLLBACK, KEEP,
        COMPOSE, SERVICE, PROJECT, ENV_FILE, IMAGE,
        STRATEGY, PORT_ENV, SLOTS, RESTART_CHECK, DRAIN_CMD, DRAIN_GRACE,
    }
}

const LONG_ABOUT: &str = "Switch the live release in one rename: in release-folder mode (--root), \
     ROOT/current -> releases/<version>; in binary mode (--target), the new binary renamed \
     over the old one, which is kept as TARGET.ugw-prev. A reader never sees a missing or \
     half-written release. With --restart, a restart that fails switches back. --rollback \
     switches to the release before and marks the one it leaves failed.\n\n\
     What it publishes, it checks first (nothing is switched when a check fails): the \
     artifact, its staging folder and every folder on the way belong to you or root and \
     no other user can write them (exit 1, kind unsafe_input; keep staging folders out \
     of /tmp). An artifact a ugw-fetch step of this run on this host staged (taken from \
     that step, or --from naming the same file) is hashed again and must have the step's \
     sha256, an extracted folder the manifest the step recorded (exit 1, kind \
     checksum_mismatch, naming the paths that differ). --rollback follows only this \
     run's swap of this --root or --target (compared as resolved paths: ROOT/, ROOT/./ \
     and a relative path are ROOT); a previous release it names must be a plain name, \
     as --release is (else exit 2, kind bad_record), and a real folder in releases/. \
     releases/ and the release switched to must be real folders of yours or root's, \
     never symbolic links (exit 1, kind unsafe_input); a prune removes only releases \
     ugw staged (its marker) and names them on stderr. A successful swap to a release \
     marked failed clears the mark; a --link given for a release staged already without \
     it is refused (exit 2; --force stages it again), never silently left out.\n\n\
     A release marked failed (.ugw-failed says when and why) is not swapped in again \
     unless --force (exit 2). --force over a staged release stages the new content \
     beside it and exchanges the two in one rename, so a reader never finds current \
     missing; the old content is kept until the restart proves the new one, and put back \
     if it fails. A --link TARGET is resolved with no symbolic link on the way (one the \
     release holds is refused, unsafe_input). A copied release keeps every folder's \
     mode. The folder a ugw-fetch step of this run staged is moved into releases/ in one \
     rename when both are on one file system (across file systems it is copied; a --from \
     given by hand is always copied), and checked again under its private name there \
     before it gets the release's name (changed since: moved back, checksum_mismatch); a \
     rerun of that swap finds the release it moved by its marker. --force-restart runs --restart even when nothing was switched; a swap killed between its switch and its restart leaves .ugw-restart-pending in the release (binary mode: TARGET.ugw-restart-pending), and its rerun restarts (switching back if that fails). When a \
     restart fails, its last output lines are shown on stderr, scrubbed; a restart that \
     ignores SIGTERM is killed by the deadline (the grace comes out of it). A swap \
     interrupted by a signal during its restart records what it switched, and \
     --rollback on that record takes it back.\n\n\
     The restart command runs in its own process group, and whatever it leaves running \
     in that group when it ends is killed (stderr says how many): a service started with \
     `app &` dies with it. Start services with systemd instead: --restart 'systemctl \
     restart app', with a unit whose ExecStartPre checks the release and whose \
     Type=notify (or a health check in ExecStartPost) makes a bad start fail the \
     restart, so the swap switches back; or detach the service (setsid) yourself.";

const START_LONG_HELP: &str = "Be the service manager of a service that has none (in place of --restart): \
     stop the process --pidfile names (SIGTERM to its process group, --stop-timeout, \
     then SIGKILL, waited for until it is gone), then run CMD (sh -c) in the folder of \
     the release now live (ROOT/releases/<version>, also in $UGW_RELEASE_DIR, its name \
     in $UGW_RELEASE), detached: in a session of its own, stdin /dev/null, stdout and \
     stderr appended to --log. Its pid is written to --pidfile atomically (first line \
     the pid, second which process it is). CMD must keep the service in the \
     foreground (exec it; no daemonising). A start counts when the process still runs \
     --alive-for later; one that exits before is a failed restart: the swap switches \
     back and starts the release before (exit 1, kind restart_failed). Stop, then \
     start: the release running holds the port the new one needs. A pidfile whose \
     process is gone is fine (said on stderr); one that names a process ugw-swap did \
     not start (written by hand, or its pid reused since) or that is a symbolic link \
     or another user's is refused before anything is switched, and nothing is \
     signalled (exit 1, kind unsafe_input).";

const EXAMPLES: &str = "\
Examples:
  # Switch /opt/app/current to the release ugw-fetch just staged, restart, and switch back if the restart fails:
  ugw-fetch --url \"$BASE/app-$V-linux-amd64.tar.gz\" --sha256-url \"$BASE/SHA256SUMS\" --dest /opt/app/staging --extract \\
    | ugw-swap --root /opt/app --link shared/config.toml:config.toml --restart 'systemctl restart app'

  # Replace a single binary while it runs, keeping the old one as /usr/local/bin/app.ugw-prev:
  ugw-swap --target /usr/local/bin/app --from /opt/app/staging/app --restart 'systemctl restart app'

  # Switch back to the release before, marking the one left failed (on a failed record too: the failure path):
  ugw-swap --root /opt/app --rollback --restart 'systemctl restart app'

  # No service manager: stop the release running, start the new one detached (log in /run/app/app.log):
  ugw-fetch --url \"$BASE/app-$V-linux-amd64.tar.gz\" --sha256-url \"$BASE/SHA256SUMS\" --dest /opt/app/staging --extract --keep 3 \\
    | ugw-swap --root /opt/app --start 'exec bin/app' --pidfile /run/app/app.pid \\
    | ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --pidfile /run/app/app.pid --expect-version --timeout 30s

  # What is live, what came before, and every release kept:
  ugw-swap status --root /opt/app";

/// This tool as `cli` and xtask see it: `--rollback` and `status` run on a failed record.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run)
        .version_was_the_label()
        .inverse_when(|m| m.get_flag(id::ROLLBACK) || m.subcommand_name() == Some(id::STATUS))
}

/// The clap command: the common flags, then this tool's own.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one flag after another: a builder reads best whole"
)]
pub fn command() -> Command {
    tool_command(
        "ugw-swap",
        "Switch the live release atomically, restart, and switch back when the restart fails",
    )
    .long_about(LONG_ABOUT)
    .after_long_help(EXAMPLES)
    .subcommand(
        Command::new(id::STATUS)
            .about("Print the current release, the previous one and every release kept"),
    )
    .next_help_heading("Where")
    .arg(
        flag::path(
            id::ROOT,
            "DIR",
            "Release-folder mode: DIR/releases/<version>/ and DIR/current -> releases/<version>",
        )
        .conflicts_with(id::TARGET)
        .global(true),
    )
    .arg(
        flag::path(
            id::TARGET,
            "PATH",
            "Binary mode: replace the file PATH (its owner, mode and extended attributes are kept)",
        )
        .global(true),
    )
    .arg(
        flag::path(
            id::COMPOSE,
            "FILE",
            "Compose mode: pin the --service images of the Compose file FILE by digest (in FILE's folder's .ugw/PROJECT.override.yml) and bring them up",
        )
        .conflicts_with_all([id::ROOT, id::TARGET])
        .requires(id::SERVICE)
        .global(true),
    )
    .args(compose_args())
    .next_help_heading("What")
    .arg(flag::path(
        id::FROM,
        "PATH",
        "The new release: a folder or a single file [default: the path of the last ugw-fetch step]",
    ))
    .arg(flag::text(
        id::RELEASE,
        "V",
        "The release's name under releases/ [default: the version of the last ugw-fetch step]",
    ))
    .arg(flag::repeated(
        id::LINK,
        "SHARED:TARGET",
        clap::value_parser!(String),
        "Link SHARED (relative to --root) to TARGET inside the release, e.g. shared/.env:.env (repeatable)",
    ))
    .arg(flag::file_mode(id::MODE, "The new binary's mode in binary mode (e.g. 755) [default: the old binary's]",
    ))
    .arg(flag::switch(
        id::FORCE,
        "Replace a staged release of the same version whose content differs",
    ))
    .next_help_heading("Restart and rollback")
    .arg(
        flag::text(
            id::RESTART,
            "CMD",
            "Run CMD (sh -c) after the switch; if it fails, switch back, run it again, exit 1",
        )
        .long_help(
            "Run CMD (sh -c) after the switch; if it fails, switch back, run it again, and exit 1. \
             CMD runs in its own process group, which is killed when CMD exits: a service it \
             starts itself (rather than through systemctl or a supervisor) must leave that group \
             (setsid) before CMD returns.",
        ),
    )
    .arg(
        flag::switch(
            id::FORCE_RESTART,
            "Run --restart (or --start) even when nothing was switched (the release is current already): to restart again after a failed start",
        )
        .requires(id::RESTARTER),
    )
    .arg(flag::duration(id::RESTART_TIMEOUT, "How long CMD may take").default_value("2m"))
    .arg(
        flag::text(
            id::START,
            "CMD",
            "Be the service manager: stop the process --pidfile names, start CMD detached for the release now live; if it exits at once, switch back and start the one before",
        )
        .conflicts_with(id::RESTART)
        .requires(id::PIDFILE)
        .long_help(START_LONG_HELP),
    )
    .arg(
        flag::path(
            id::PIDFILE,
            "FILE",
            "With --start: where the pid of the process started is kept (ugw-wait-healthy --pidfile FILE watches it)",
        )
        .requires(id::START),
    )
    .arg(
        flag::path(
            id::LOG,
            "FILE",
            "With --start: the file the service's stdout and stderr are appended to [default: the --pidfile with .log for its extension]",
        )
        .requires(id::START),
    )
    .arg(
        flag::duration(
            id::STOP_TIMEOUT,
            "With --start: how long the process stopped has after SIGTERM before SIGKILL",
        )
        .default_value("10s"),
    )
    .arg(
        flag::duration(
            id::ALIVE_FOR,
            "With --start: how long the process started must keep running for the start to count",
        )
        .default_value("1s"),
    )
    .group(ArgGroup::new(id::RESTARTER).args([id::RESTART, id::START]))
    .arg(
        flag::switch(
            id::ROLLBACK,
            "Switch back to the previous release and mark the one left failed (runs on a failed record, where it takes back only the switch that run made)",
        )
        .conflicts_with_all([id::FROM, id::RELEASE, id::FORCE]),
    )
    .arg(
        flag::count(id::KEEP, "Keep this many releases; older ones are removed (never current, previous, or a newer failed one)",
        )
        .default_value("5"),
    )
}

/// The flags of `--compose` mode, under their own heading.
fn compose_args() -> Vec<clap::Arg> {
    vec![
        flag::repeated(
            id::SERVICE,
            "NAME",
            clap::value_parser!(String),
            "With --compose: the service to switch (repeatable: every one gets the same image; the set is one unit, with its own pins and rollback)",
        )
        .requires(id::COMPOSE)
        .global(true),
        flag::text(
            id::PROJECT,
            "NAME",
            "With --compose: the Compose project name [default: the name of FILE's folder, as Compose gives it]",
        )
        .requires(id::COMPOSE)
        .global(true),
        flag::path(
            id::ENV_FILE,
            "FILE",
            "With --compose: passed to Compose as --env-file (ugw never writes it)",
        )
        .requires(id::COMPOSE)
        .global(true),
        flag::text(
            id::IMAGE,
            "REPO@sha256:DIGEST",
            "With --compose: the image to pin [default: the reference of this run's ugw-fetch --image step]",
        )
        .requires(id::COMPOSE)
        .conflicts_with(id::ROLLBACK),
        flag::value(
            id::STRATEGY,
            "HOW",
            ["stop-first", "start-first"],
            "With --compose: stop-first (the old container stops, then the new one starts) or start-first (the new one starts on the idle --slots port, and the old one stops once it is healthy)",
        )
        .default_value("stop-first")
        .requires(id::COMPOSE)
        .global(true),
        flag::text(
            id::PORT_ENV,
            "NAME",
            "With --strategy start-first: the variable the service reads its port from (set for Compose, so ${NAME} in FILE reads it, and in the container)",
        )
        .global(true),
        flag::text(
            id::SLOTS,
            "PORT,PORT",
            "With --strategy start-first: the two ports the service alternates between (each slot is the Compose project PROJECT-PORT)",
        )
        .global(true),
        flag::text(
            id::RESTART_CHECK,
            "URL",
            "With --compose, for a service without a Docker healthcheck: healthy when URL answers 2xx ({port} is replaced by the slot's port)",
        )
        .requires(id::COMPOSE),
        flag::text(
            id::DRAIN_CMD,
            "CMD",
            "With --strategy start-first: run CMD (sh -c) before the old slot stops, with $UGW_DRAIN_PORT (the old slot) and $UGW_LIVE_PORT (e.g. ugw-drain on the balancer); if CMD fails, the new slot is removed and the old one keeps serving (exit 1)",
        )
        .requires(id::COMPOSE),
        flag::duration(
            id::DRAIN_GRACE,
            "With --strategy start-first: how long the old slot keeps serving after the new one is healthy (and after --drain-cmd), so the balancer's health check sees the new one up before the old one stops",
        )
        .default_value("2s")
        .requires(id::COMPOSE),
    ]
}

/// Release-folder mode (`--root`): what only it reads.
#[derive(Debug)]
pub(crate) struct ReleasesMode {
    pub root: PathBuf,
    pub links: Vec<(PathBuf, PathBuf)>,
    /// `--force`: stage a release of a version staged already again, or swap in one marked
    /// failed.
    pub force: bool,
    pub keep: usize,
}

/// Binary mode (`--target`): what only it reads.
#[derive(Debug)]
pub(crate) struct BinaryMode {
    pub target: PathBuf,
    pub mode: Option<u32>,
}

/// Where the swap happens: each mode with its own flags.
#[derive(Debug)]
pub(crate) enum Place {
    Releases(ReleasesMode),
    Binary(BinaryMode),
    Compose(compose::ComposeMode),
}

/// The flags, checked, and the artifact this run's fetch step vouches for.
#[derive(Debug)]
pub(crate) struct Options {
    pub place: Place,
    pub from: Option<PathBuf>,
    /// `--from` was given (the artifact is not the fetch step's path).
    pub from_given: bool,
    /// What the `ugw-fetch` step of this run recorded for `from`, when `from` is the artifact
    /// it staged (taken from it, or `--from` naming the same file): the artifact is hashed
    /// again and must match before it is published (the record is input; the file may have
    /// been replaced since it was verified, or the step forged).
    pub vouched: Option<artifact::Vouched>,
    pub version: Option<String>,
    pub restart: Option<String>,
    /// `--start`: ugw-swap stops and starts the service itself.
    pub start: Option<start::Start>,
    pub force_restart: bool,
    pub restart_timeout: Duration,
    pub rollback: bool,
    pub lock_timeout: Duration,
    pub status: bool,
}

impl Options {
    fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let place = place(m)?;
        let given = m.get_one::<PathBuf>(id::FROM).cloned();
        let from_given = given.is_some();
        // Compose mode pins an image, never a file: the fetch step it reads is an image's.
        let fetched = match place {
            Place::Compose(_) => None,
            _ => fetched(ctx)?,
        };
        let vouched = fetched.as_ref().map(artifact::Vouched::from_step);
        let vouched = match &given {
            None => vouched,
            Some(from) => vouched.filter(|v| v.names(from)),
        };
        let from = given.or_else(|| fetched.as_ref().map(|f| PathBuf::from(&f.path)));
        let version = m
            .get_one::<String>(id::RELEASE)
            .cloned()
            .or_else(|| fetched.and_then(|f| f.version));
        Ok(Options {
            place,
            from,
            from_given,
            vouched,
            version,
            restart: m.get_one::<String>(id::RESTART).cloned(),
            start: start_options(m)?,
            force_restart: m.get_flag(id::FORCE_RESTART),
            restart_timeout: defaulted::<Duration>(m, id::RESTART_TIMEOUT),
            rollback: m.get_flag(id::ROLLBACK),
            lock_timeout: ctx.lock_timeout(),
            status: m.subcommand_name() == Some(id::STATUS),
        })
    }
}

/// The value of a flag that has a default (clap fills it in: never missing).
fn defaulted<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> T {
    m.get_one::<T>(id)
        .cloned()
        .expect("a flag with a default_value always has a value")
}

/// The ugw-fetch step of this run this swap takes its artifact from, if any. In a dry run, a
/// dry-run fetch step that found the artifact staged already (its result is a real `Fetched`)
/// stands for the fetch: the artifact is checked against it as against a real one. A plan of
/// what it would fetch has another shape, and `unfetched` answers for it.
fn fetched(ctx: &Ctx) -> Result<Option<Fetched>> {
    let this_run = ctx.this_run();
    Ok(match this_run.last_result()? {
        Some(real) => Some(real),
        None => this_run.dry_run_result(ctx.dry_run).unwrap_or(None),
    })
}

/// `--root` or `--target`, with the flags of that mode.
fn place(m: &ArgMatches) -> Result<Place> {
    match (
        m.get_one::<PathBuf>(id::ROOT),
        m.get_one::<PathBuf>(id::TARGET),
    ) {
        (Some(root), None) => {
            let mut links = Vec::new();
            for raw in m.get_many::<String>(id::LINK).into_iter().flatten() {
                links.push(releases::parse_link(raw)?);
            }
            Ok(Place::Releases(ReleasesMode {
                root: root.clone(),
                links,
                force: m.get_flag(id::FORCE),
                keep: defaulted::<u32>(m, id::KEEP) as usize,
            }))
        }
        (None, Some(target)) => Ok(Place::Binary(BinaryMode {
            target: target.clone(),
            mode: m.get_one::<u32>(id::MODE).copied(),
        })),
        (None, None) if m.contains_id(id::COMPOSE) => compose_mode(m).map(Place::Compose),
        _ => Err(Error::usage(
            "give --root DIR (release folders), --target PATH (a binary) or --compose FILE",
        )),
    }
}

/// `--compose` and its flags, checked.
fn compose_mode(m: &ArgMatches) -> Result<compose::ComposeMode> {
    let given = m
        .get_one::<PathBuf>(id::COMPOSE)
        .cloned()
        .unwrap_or_default();
    let file = std::path::absolute(&given)
        .map_err(|e| Error::io(format!("cannot resolve {}", given.display()), &e))?;
    compose::check_input_file("--compose", &file)?;
    if let Some(env_file) = m.get_one::<PathBuf>(id::ENV_FILE) {
        compose::check_input_file("--env-file", env_file)?;
    }
    let services: Vec<String> = m
        .get_many::<String>(id::SERVICE)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let plain = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if let Some(bad) = services.iter().find(|s| !plain(s)) {
        return Err(Error::usage(format!(
            "--service {bad:?}: a service name is letters, digits, '.', '_' and '-'"
        )));
    }
    let project = m
        .get_one::<String>(id::PROJECT)
        .cloned()
        .unwrap_or_else(|| compose::default_project(&file));
    if !plain(&project) {
        return Err(Error::usage(format!(
            "--project {project:?}: letters, digits, '.', '_' and '-' only"
        )));
    }
    let strategy = match m.get_one::<String>(id::STRATEGY).map(String::as_str) {
        Some("start-first") => start_first(m, &services)?,
        _ => compose::Strategy::StopFirst,
    };
    let keep_given = m.value_source(id::KEEP) == Some(clap::parser::ValueSource::CommandLine);
    Ok(compose::ComposeMode {
        file,
        project,
        services,
        env_file: m.get_one::<PathBuf>(id::ENV_FILE).cloned(),
        image: m.get_one::<String>(id::IMAGE).cloned(),
        strategy,
        restart_check: m.get_one::<String>(id::RESTART_CHECK).cloned(),
        alive_for: defaulted::<Duration>(m, id::ALIVE_FOR),
        drain_cmd: m.get_one::<String>(id::DRAIN_CMD).cloned(),
        drain_grace: defaulted::<Duration>(m, id::DRAIN_GRACE),
        keep: keep_given.then(|| defaulted::<u32>(m, id::KEEP) as usize),
    })
}

/// `--strategy start-first`: one service, `--port-env` and two `--slots`.
fn start_first(m: &ArgMatches, services: &[String]) -> Result<compose::Strategy> {
    if services.len() != 1 {
        return Err(Error::usage(
            "--strategy start-first switches one --service (its two slots share one --port-env)",
        ));
    }
    let port_env = m
        .get_one::<String>(id::PORT_ENV)
        .cloned()
        .ok_or_else(|| Error::usage("--strategy start-first needs --port-env NAME"))?;
    let raw = m
        .get_one::<String>(id::SLOTS)
        .ok_or_else(|| Error::usage("--strategy start-first needs --slots PORT,PORT"))?;
    let ports: Vec<u16> = raw
        .split(',')
        .map(|p| p.trim().parse::<u16>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::usage(format!("--slots {raw:?}: two ports, e.g. 8081,8082")))?;
    match ports.as_slice() {
        [a, b] if a != b && *a > 0 && *b > 0 => Ok(compose::Strategy::StartFirst {
            port_env,
            slots: [*a, *b],
        }),
        _ => Err(Error::usage(format!(
            "--slots {raw:?}: two different ports, e.g. 8081,8082"
        ))),
    }
}

/// `--start` and its flags; `None` without it.
fn start_options(m: &ArgMatches) -> Result<Option<start::Start>> {
    let Some(command) = m.get_one::<String>(id::START) else {
        return Ok(None);
    };
    let pidfile = m
        .get_one::<PathBuf>(id::PIDFILE)
        .cloned()
        .ok_or_else(|| Error::usage("--start needs --pidfile FILE"))?;
    let log = m
        .get_one::<PathBuf>(id::LOG)
        .cloned()
        .unwrap_or_else(|| start::Start::default_log(&pidfile));
    if log == pidfile {
        return Err(Error::usage(
            "--log and --pidfile name the same file; give --log another one",
        ));
    }
    Ok(Some(start::Start {
        command: command.clone(),
        pidfile,
        log,
        stop_timeout: defaulted::<Duration>(m, id::STOP_TIMEOUT),
        alive_for: defaulted::<Duration>(m, id::ALIVE_FOR),
    }))
}

/// Swap, roll back, or say what is live.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let options = Options::from_matches(ctx, matches)?;
    if let Some(planned) = unfetched(ctx, &options)? {
        return Ok(StepResult::typed(false, &planned));
    }
    if let (Some(start), false, false) = (
        &options.start,
        options.status,
        matches!(options.place, Place::Compose(_)),
    ) {
        // Before anything is switched: a pidfile that names a stranger is refused now.
        start::check(start)?;
    }
    let result = match &options.place {
        Place::Releases(mode) => releases::run(ctx, &options, mode)?,
        Place::Binary(mode) => binary::run(ctx, &options, mode)?,
        Place::Compose(mode) => compose::run_compose(ctx, &options, mode)?,
    };
    Ok(StepResult::typed(result.changed, &result))
}

/// `--dry-run` on a dry-run ugw-fetch step that only planned its fetch (ugw(7): a whole
/// pipeline can be dry-run): nothing was staged, so nothing can be checked; say what would be
/// switched. `None` in a real run (a dry-run step never lets one act: it finds no fetch step),
/// with `--from`, on a real fetch step, for `--rollback` and `status`.
fn unfetched(ctx: &Ctx, options: &Options) -> Result<Option<Swapped>> {
    if !ctx.dry_run
        || options.rollback
        || options.status
        || options.from_given
        || matches!(options.place, Place::Compose(_))
    {
        return Ok(None);
    }
    let this_run = ctx.this_run();
    if this_run.last_result::<Fetched>()?.is_some()
        || this_run
            .dry_run_result::<Fetched>(true)
            .is_ok_and(|f| f.is_some())
    {
        return Ok(None);
    }
    let Some(planned) = this_run.dry_run_result::<FetchPlanned>(true)? else {
        return Ok(None);
    };
    let from = PathBuf::from(&planned.path);
    // No fetch step stands for the artifact here: the version is --release's, or the plan's.
    let version = options.version.clone().or(planned.version).ok_or_else(|| {
        Error::usage(format!(
            "no --release, and the dry-run ugw-fetch step names no version for {}",
            planned.url
        ))
    })?;
    let result = match &options.place {
        Place::Releases(mode) => releases::unfetched(
            &mode.root,
            &from,
            &version,
            mode.force,
            options.restart.is_some(),
        )?,
        Place::Binary(mode) => Swapped {
            mode: "binary".into(),
            target: Some(mode.target.display().to_string()),
            would: Some(format!(
                "replace {} with {} (not fetched: dry-run)",
                mode.target.display(),
                from.display()
            )),
            ..Swapped::default()
        },
        Place::Compose(_) => return Ok(None),
    };
    if let Some(would) = &result.would {
        ctx.reporter.info(&format!("dry run: would {would}"));
    }
    Ok(Some(result))
}

/// `--force-restart` when nothing was switched: run the restart anyway (issue 21 item 5).
/// `Ok(None)` when it was not asked for.
pub(crate) fn forced_restart(
    ctx: &Ctx,
    options: &Options,
    result: &mut Swapped,
    what: &str,
    live: Option<(&std::path::Path, &str)>,
) -> Result<Option<()>> {
    if !options.force_restart {
        return Ok(None);
    }
    if ctx.dry_run {
        result.would = Some(format!("restart ({what} is current already)"));
        return Ok(Some(()));
    }
    ctx.reporter.info(&format!(
        "{what} is current already; --force-restart: restarting anyway"
    ));
    let (dir, release) = live.map_or((None, None), |(dir, name)| (Some(dir), Some(name)));
    let Some(run) = restart::restart_service(ctx, options, "forced", result, dir, release) else {
        return Ok(None);
    };
    let run = run?;
    result.restarted = run.ok;
    let ok = run.ok;
    result.restarts.push(run);
    if ok {
        Ok(Some(()))
    } else {
        Err(restart_failed(result, None))
    }
}

/// A restart failed after the switch was undone: exit 1, kind `restart_failed`, with the
/// result (both runs) in the record.
pub(crate) fn restart_failed(result: &Swapped, reverted_to: Option<&str>) -> Error {
    let first = result
        .restarts
        .first()
        .map_or_else(String::new, |r| r.outcome.clone());
    let message = match reverted_to {
        Some(to) => {
            format!("the restart failed ({first}); switched back to {to} and ran the restart again")
        }
        None => format!("the restart failed ({first}); there was nothing to switch back to"),
    };
    Error::new(ugw_shared::ErrorKind::RestartFailed, message).with_typed(result)
}
