//! The five published upgrade runbooks redone with ugw (examples/runbooks/), each run for real
//! in its lab of demo nodes: the upgrade that goes through, and a bad release that must be
//! rolled back. The assertions read what an operator would look at afterwards: the exit code,
//! the records, the version each node answers, the files on disk, the database.

mod gitlab;
mod gitpulse;
mod guts;
mod keeptrusts;
mod lab;
mod terragnos;

use crate::kit;

use kit::Record;
use kit::haproxy::{self, HaProxy, Server};
use kit::load::Load;
use kit::postgres::Database;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

// ---- the lab ----

/// A runbook's lab in a temp folder (built by its lab.sh), stopped when dropped, even when
/// the test fails.
struct Lab {
    dir: tempfile::TempDir,
    runbook: &'static str,
}

impl Lab {
    /// `examples/runbooks/RUNBOOK/lab.sh DIR` with `env`; `None` (skipped, or failed under
    /// CI=true) when a component the runbook needs is missing.
    fn start(runbook: &'static str, needs: &[&str], env: &[(&str, &str)]) -> Option<Lab> {
        Lab::start_within(runbook, needs, env, kit::RUN_LIMIT)
    }

    /// [`Lab::start`], lab.sh given at most `limit`.
    fn start_within(
        runbook: &'static str,
        needs: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> Option<Lab> {
        if !needs.iter().all(|component| kit::require(component)) {
            return None;
        }
        let lab = Lab {
            dir: tempfile::Builder::new()
                .prefix("ugw-rb-")
                .tempdir()
                .unwrap(),
            runbook,
        };
        let lab_sh = examples().join(runbook).join("lab.sh");
        let out = lab.program_within("bash", &[lab_sh.to_str().unwrap(), lab.s()], env, limit);
        assert_eq!(out.code, 0, "lab.sh failed:\n{}", out.stderr);
        Some(lab)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn s(&self) -> &str {
        self.path().to_str().unwrap()
    }

    /// Run the runbook's `script` with `args` and `env`, as an operator would (stdin closed).
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        self.run_within(script, args, env, kit::RUN_LIMIT)
    }

    /// [`Lab::run`] for at most `limit`.
    fn run_within(
        &self,
        script: &str,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> kit::Outcome {
        let script = self.script(script);
        let mut command_line = vec![script.as_str()];
        command_line.extend_from_slice(args);
        let out = self.program_within("bash", &command_line, env, limit);
        eprintln!("{} said:\n{}{}", self.runbook, out.stdout, out.stderr);
        out
    }

    /// The path of one of the runbook's files.
    fn script(&self, name: &str) -> String {
        examples()
            .join(self.runbook)
            .join(name)
            .to_str()
            .unwrap()
            .to_string()
    }

    fn bash(&self, argv: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        self.program("bash", argv, env)
    }

    /// `program` with `argv` in the lab's folder, the binaries on PATH, stdin closed.
    fn program(&self, program: &str, argv: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        self.program_within(program, argv, env, kit::RUN_LIMIT)
    }

    /// [`Lab::program`] for at most `limit`.
    fn program_within(
        &self,
        program: &str,
        argv: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> kit::Outcome {
        let mut cmd = Command::new(program);
        cmd.args(argv)
            .current_dir(self.path())
            .env("PATH", kit::path_with_bins())
            .env("UGW_BIN_DIR", kit::bin("ugw-demo-app").parent().unwrap())
            .env_remove("UGW_HOST_ID")
            .stdin(Stdio::null());
        for (name, value) in env {
            cmd.env(name, value);
        }
        kit::run_within(cmd, limit)
    }

    /// A record the runbook left, decoded strictly.
    fn record(&self, relative: &str) -> Record {
        let path = self.path().join(relative);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kit::parse_record(&text)
    }

    fn file(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.path().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn exists(&self, relative: &str) -> bool {
        self.path().join(relative).exists()
    }

    /// The port NODE listens on (LAB/NODE/port).
    fn port(&self, node: &str) -> u16 {
        String::from_utf8(self.file(&format!("{node}/port")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The pid of NODE's service (LAB/NODE/app.pid).
    fn pid(&self, node: &str) -> String {
        String::from_utf8(self.file(&format!("{node}/app.pid"))).unwrap()
    }

    /// The version NODE answers on /health/ready, read by hand (not by the tool under test).
    fn served(&self, node: &str) -> String {
        let (status, body) = get(self.port(node), "/health/ready", &[]);
        assert_eq!(status, 200, "{node}: {body}");
        version_in(&body)
    }
}

/// Drop the lab and check that it stopped every process it started (each `*.pid` file; the
/// pid is its first line: `ugw-swap --start` writes which process it is on the second).
fn stop_and_check(lab: Lab) {
    let pids: Vec<i32> = texts_below(lab.path())
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "pid"))
        .filter_map(|(_, text)| text.lines().next()?.trim().parse().ok())
        .collect();
    assert!(!pids.is_empty());
    drop(lab);
    for pid in pids {
        assert!(
            kit::gone(pid, Duration::from_secs(2)),
            "pid {pid} still runs"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let lib = examples().join("lib.sh");
        let _ = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && lab_stop "$2""#)
            .args(["lab_stop", lib.to_str().unwrap(), self.s()])
            .stdin(Stdio::null())
            .status();
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/runbooks")
}

/// How long a Compose lab's lab.sh and scripts may run: three images built and pushed, a
/// stack started, each under a machine's load.
const COMPOSE_LAB_LIMIT: Duration = Duration::from_secs(240);

/// A Compose runbook's lab: Docker required (skipped with the reason, failed under CI=true),
/// and a [`kit::docker::Cleanup`] whose prefix lab.sh names every project, volume and image
/// with (`LAB_DOCKER_PREFIX`), so they go even where `lab_stop` could not. Fields drop in
/// order: the lab (`lab_stop`) first, then the guard.
struct ComposeLab {
    lab: Lab,
    cleanup: kit::docker::Cleanup,
}

impl std::ops::Deref for ComposeLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl ComposeLab {
    /// `Lab::start` of `runbook` with Docker too.
    fn start(runbook: &'static str, needs: &[&str], env: &[(&str, &str)]) -> Option<ComposeLab> {
        kit::docker::require_docker()?;
        let cleanup = kit::docker::Cleanup::new();
        let mut env = env.to_vec();
        env.push(("LAB_DOCKER_PREFIX", cleanup.prefix()));
        let lab = Lab::start_within(runbook, needs, &env, COMPOSE_LAB_LIMIT)?;
        Some(ComposeLab { lab, cleanup })
    }

    /// [`Lab::run`], given as long as lab.sh.
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        self.lab.run_within(script, args, env, COMPOSE_LAB_LIMIT)
    }

    /// The id of the container Compose runs for `service` in the lab's projects.
    fn container(&self, service: &str) -> String {
        let listed = kit::docker::docker_ok(&[
            "ps",
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.ID}} {{.Label \"com.docker.compose.project\"}}",
        ]);
        let ids: Vec<&str> = listed
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, project)| project.starts_with(self.cleanup.prefix()))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids.len(), 1, "{service}: {listed}");
        ids[0].to_string()
    }

    /// The image reference `service`'s container was created from (what ugw-swap pinned).
    fn image_of(&self, service: &str) -> String {
        kit::docker::inspect(&self.container(service), "{{.Config.Image}}")
    }

    /// Stop the lab (`lab_stop`, as its Drop does) and check it left nothing of its own in
    /// Docker (containers, volumes, images of its prefix) and no process of a pid file.
    fn stop_and_check(self) {
        let ComposeLab { lab, cleanup } = self;
        let pids: Vec<i32> = texts_below(lab.path())
            .into_iter()
            .filter(|(path, _)| path.extension().is_some_and(|e| e == "pid"))
            .filter_map(|(_, text)| text.lines().next()?.trim().parse().ok())
            .collect();
        assert!(!pids.is_empty());
        let registry = String::from_utf8(lab.file("registry.addr")).unwrap();
        drop(lab);
        for pid in pids {
            assert!(
                kit::gone(pid, Duration::from_secs(2)),
                "pid {pid} still runs"
            );
        }
        // The prefix and its dash: `ugwtest-1-1` is not `ugwtest-1-10`'s.
        let prefix = &format!("{}-", cleanup.prefix());
        let containers = kit::docker::docker_ok(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}} {{.Label \"com.docker.compose.project\"}}",
        ]);
        assert!(
            !containers.contains(prefix),
            "containers left: {containers}"
        );
        let volumes = kit::docker::docker_ok(&["volume", "ls", "-q"]);
        assert!(!volumes.contains(prefix), "volumes left: {volumes}");
        // The lab's images: of its registry (a pid reused may have left other tests' images
        // with the same prefix).
        let images = kit::docker::docker_ok(&["images", "--format", "{{.Repository}}"]);
        let ours = format!("{}/{prefix}", registry.trim());
        assert!(!images.contains(&ours), "images left: {images}");
    }
}

/// GET `path` on 127.0.0.1:`port` with `headers`: the status and the body; status 0 when
/// nothing listens there.
fn get(port: u16, path: &str, headers: &[&str]) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let extra = headers.join("\r\n") + if headers.is_empty() { "" } else { "\r\n" };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn version_in(body: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["version"].as_str().unwrap_or_default().to_string()
}

// ---- reading records ----

/// `tool status` of every step, in order.
fn steps(record: &Record) -> Vec<String> {
    record
        .steps
        .iter()
        .map(|s| format!("{} {}", s.tool, s.status))
        .collect()
}

/// The record at `relative`, which must be ok (or failed) with exactly these steps.
#[track_caller]
fn record_with(lab: &Lab, relative: &str, ok: bool, expected: &[impl AsRef<str>]) -> Record {
    let record = lab.record(relative);
    assert_eq!(record.ok, ok, "{relative}: {record:#?}");
    let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
    assert_eq!(steps(&record), expected, "{relative}");
    record
}

/// The steps a pipe of `tools` leaves when the one at `failed` fails: those before it ok, the
/// ones after it skipped (they received a failed record); all ok when none fails.
fn pipe_steps(tools: &[&str], failed: Option<usize>) -> Vec<String> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let status = match failed {
                Some(f) if i == f => "failed",
                Some(f) if i > f => "skipped",
                _ => "ok",
            };
            format!("{tool} {status}")
        })
        .collect()
}

/// When a step started and ended, in ms since the epoch (the record's UTC timestamps).
fn span(step: &kit::Step) -> (u64, u64) {
    let start = epoch_ms(&step.started);
    (start, start + step.elapsed_ms)
}

/// `2026-11-21T23:59:01.123Z` in ms since the epoch.
fn epoch_ms(stamp: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| -> i64 { stamp[range].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let ms = ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23);
    u64::try_from(ms).unwrap()
}

// ---- shared checks ----

/// A lab whose runbook uses PostgreSQL: a database of the kit's private cluster, named after
/// the test, given to lab.sh as `DATABASE_URL`.
fn pg_lab(runbook: &'static str, test: &str) -> Option<(Lab, Database)> {
    if !kit::require("pg_dump") || !kit::require("pg_restore") {
        return None;
    }
    let db = kit::postgres::database(test)?;
    let lab = Lab::start(
        runbook,
        &["python3", "setsid", "sha256sum"],
        &[("DATABASE_URL", &db.url())],
    )?;
    Some((lab, db))
}

/// The columns of `table` in the PostgreSQL database, in order; empty when it does not exist.
fn pg_columns(db: &Database, table: &str) -> Vec<String> {
    db.sql(&format!(
        "SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"
    ))
}

/// The columns of `table` in a SQLite file; empty when it does not exist.
fn sqlite_columns(path: &Path, table: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut query = db
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    query
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every file below `dir`, read as (lossy) text: where a secret must not be.
fn texts_below(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                todo.push(path);
            } else if entry.file_type().unwrap().is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    found
}

/// HAProxy's view of `backend/server`, read on the admin socket `socket` (a lab's own HAProxy,
/// not the kit's): (operational state, admin state); 2 is running, admin 0 is ready (bit 1:
/// maint set at run time).
fn haproxy_state(socket: &Path, backend: &str, server: &str) -> (u32, u32) {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    writeln!(stream, "show servers state {backend}").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let row: Vec<&str> = text
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|words| words.get(3) == Some(&server))
        .unwrap_or_else(|| panic!("no {backend}/{server} in {text}"));
    (row[5].parse().unwrap(), row[6].parse().unwrap())
}

/// Whether the process of pid file `relative` still runs.
fn runs(lab: &Lab, relative: &str) -> bool {
    let Ok(pid) = std::fs::read_to_string(lab.path().join(relative)) else {
        return false;
    };
    !kit::gone(pid.trim().parse().unwrap(), Duration::ZERO)
}

/// A folder of stand-ins for each ugw tool that append their command line to `log` and exec
/// the real tool (which runs as it would): what anyone running `ps` would have seen. Returns
/// a PATH with that folder first.
fn spy_on_tools(dir: &Path, log: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let bins = kit::bin("ugw-wait-healthy").parent().unwrap().to_path_buf();
    for entry in std::fs::read_dir(&bins).unwrap().map(Result::unwrap) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("ugw-") || name.contains('.') {
            continue;
        }
        let spy = dir.join(&name);
        std::fs::write(
            &spy,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$0 $*\" >>'{}'\nexec '{}' \"$@\"\n",
                log.display(),
                entry.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&spy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    format!("{}:{}", dir.display(), kit::path_with_bins())
}

// ---- the README's tables ----

/// Every `FOLDER/FILE:LINE` the README's tables name holds, on that line, the first snippet
/// of the row's "with ugw" column: the tables cannot drift from the runbooks they describe.
#[test]
fn the_readme_tables_point_at_the_lines_that_do_each_step() {
    let readme = std::fs::read_to_string(examples().join("README.md")).unwrap();
    let mut per_file = std::collections::BTreeMap::<String, usize>::new();
    for row in readme.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let Some(place) = cells.last().and_then(|c| backticked(c)) else {
            continue;
        };
        let Some((file, line)) = place.rsplit_once(':') else {
            continue;
        };
        let Ok(line) = line.parse::<usize>() else {
            continue;
        };
        let snippet = backticked(cells[1]).unwrap_or_else(|| panic!("no snippet: {row}"));
        let text = std::fs::read_to_string(examples().join(file)).unwrap();
        let at = text.lines().nth(line - 1).unwrap_or_default();
        assert!(
            at.contains(snippet),
            "{file}:{line} is {at:?}, not {snippet:?}"
        );
        *per_file.entry(file.to_string()).or_default() += 1;
    }
    let files: Vec<&str> = per_file.keys().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "gitlab/zero-downtime-upgrade.yml",
            "gitpulse/update.sh",
            "guts/blue-green.sh",
            "guts/validator-upgrade.sh",
            "keeptrusts/rolling-update.sh",
            "terragnos/upgrade.sh"
        ]
    );
    assert!(per_file.values().all(|&n| n >= 10), "{per_file:?}");
}

/// The text of the first `…` in `cell`.
fn backticked(cell: &str) -> Option<&str> {
    let (_, rest) = cell.split_once('`')?;
    Some(rest.split_once('`')?.0)
}
