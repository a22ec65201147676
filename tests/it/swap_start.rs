//! Issue 21 item 4(b): `ugw-swap --start CMD --pidfile F` runs a service that has no service
//! manager. Each test runs real releases (the demo service on a free port, behind a launcher
//! script in the release's `bin/`) and checks what runs: the process the pidfile names, the
//! version it answers, what the log holds, and that a process ugw-swap did not start is never
//! signalled.

use crate::kit;

use kit::{s, swap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A release of the demo service answering `version` on `port`, saying where it starts.
fn demo_release(dir: &Path, version: &str, port: u16) -> PathBuf {
    kit::script_release(
        dir,
        version,
        &format!(
            "echo \"{version} starts in $PWD as $UGW_RELEASE\"\nexec {} --listen 127.0.0.1:{port} --version-label {version}",
            s(&kit::bin("ugw-demo-app"))
        ),
    )
}

/// One node: a releases root, a pidfile (its log beside it) and a port.
struct Node {
    dir: tempfile::TempDir,
    port: u16,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        Node {
            dir,
            port: kit::free_port(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.path().join("app")
    }

    fn pidfile(&self) -> PathBuf {
        self.path().join("run/app.pid")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("run/app.log")).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health/ready", self.port)
    }

    /// `ugw-swap --root ROOT --start 'exec bin/app' --pidfile PIDFILE` and `extra`.
    fn swap(&self, extra: &[&str]) -> kit::Outcome {
        let (root, pidfile) = (self.root(), self.pidfile());
        let mut args = vec![
            "--root",
            s(&root),
            "--start",
            "exec bin/app",
            "--pidfile",
            s(&pidfile),
        ];
        args.extend_from_slice(extra);
        swap(&args)
    }

    fn swap_to(&self, from: &Path, version: &str) -> kit::Outcome {
        self.swap(&["--from", s(from), "--release", version])
    }

    /// The pid the pidfile names (its first line).
    fn pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.pidfile()).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// The service answers `version` within a few seconds (watching the pidfile's process).
    fn answers(&self, version: &str) {
        let pidfile = self.pidfile();
        let out = kit::wait_healthy(&[
            "--url",
            &self.url(),
            "--expect-version",
            version,
            "--pidfile",
            s(&pidfile),
            "--timeout",
            "10s",
        ]);
        assert_eq!(out.code, 0, "{}\nlog:\n{}", out.stderr, self.log());
    }
}

impl Drop for Node {
    /// Whatever the pidfile names is stopped with its group, a failed test included.
    fn drop(&mut self) {
        kit::kill_started(&self.pidfile());
    }
}

fn running(pid: i32) -> bool {
    !kit::gone(pid, Duration::ZERO)
}

#[test]
fn start_then_upgrade_stops_the_old_release_and_runs_the_new_one_detached() {
    let node = Node::new();
    let v1 = demo_release(node.path(), "v1", node.port);
    let first = node.swap_to(&v1, "v1");
    first.assert_code(0);
    let pid1 = node.pid();
    node.answers("v1");
    assert!(first.stderr.contains("started process"), "{}", first.stderr);
    // Detached: a session of its own, so it outlived ugw-swap and its restart group.
    let stat = std::fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], pid1.to_string(), "session leader: {stat}");
    // The pidfile: the pid first (what ugw-wait-healthy reads), which process second.
    let pidfile = std::fs::read_to_string(node.pidfile()).unwrap();
    assert!(
        pidfile.lines().nth(1).unwrap().contains("start_ticks"),
        "{pidfile}"
    );

    let v2 = demo_release(node.path(), "v2", node.port);
    let second = node.swap_to(&v2, "v2");
    second.assert_code(0);
    assert!(kit::gone(pid1, Duration::from_secs(5)), "v1 still runs");
    let pid2 = node.pid();
    assert_ne!(pid1, pid2);
    assert!(running(pid2));
    node.answers("v2");
    assert_eq!(kit::current(&node.root()), "releases/v2");
    assert!(
        second
            .stderr
            .contains(&format!("stopped process {pid1} (release v1) with SIGTERM")),
        "{}",
        second.stderr
    );
    let step = second.last_step();
    let restart = &step.result["restarts"][0];
    assert_eq!(restart["ok"], true, "{restart}");
    assert!(
        restart["outcome"]
            .as_str()
            .unwrap()
            .contains(&format!("started process {pid2}")),
        "{restart}"
    );
    // The log, beside the pidfile: both releases' own words, from their own folders.
    let log = node.log();
    let real_root = std::fs::canonicalize(node.root()).unwrap();
    for version in ["v1", "v2"] {
        let said = format!(
            "{version} starts in {} as {version}",
            s(&real_root.join("releases").join(version))
        );
        assert!(log.contains(&said), "{said} not in:\n{log}");
    }
    assert!(log.contains("listening on"), "{log}");
    let mode = std::fs::metadata(node.path().join("run/app.log"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn a_release_that_exits_at_once_is_switched_back_and_the_one_before_runs_again() {
    let node = Node::new();
    let v1 = demo_release(node.path(), "v1", node.port);
    node.swap_to(&v1, "v1").assert_code(0);
    let pid1 = node.pid();
    node.answers("v1");

    let bad = kit::script_release(
        node.path(),
        "v2",
        "echo 'v2: bad setting listen_port=-1' >&2\nexit 3",
    );
    let out = node.swap_to(&bad, "v2");
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "restart_failed");
    assert!(kit::gone(pid1, Duration::from_secs(5)));
    assert_eq!(kit::current(&node.root()), "releases/v1");
    let pid = node.pid();
    assert_ne!(pid, pid1, "v1 was started again, as a new process");
    node.answers("v1");
    assert!(
        out.stderr.contains("v2: bad setting listen_port=-1"),
        "{}",
        out.stderr
    );
    let step = out.last_step();
    let restarts = step.result["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    assert_eq!(restarts[0]["ok"], false);
    assert_eq!(restarts[0]["exit"], 3);
    assert_eq!(restarts[1]["phase"], "after_revert");
    assert_eq!(restarts[1]["ok"], true);
    assert_eq!(step.result["marked_failed"], "v2");
    assert!(node.root().join("releases/v2/.ugw-failed").exists());
}

#[test]
fn a_rollback_stops_the_release_left_and_starts_the_one_rolled_back_to() {
    let node = Node::new();
    let v1 = demo_release(node.path(), "v1", node.port);
    let v2 = demo_release(node.path(), "v2", node.port);
    node.swap_to(&v1, "v1").assert_code(0);
    node.swap_to(&v2, "v2").assert_code(0);
    let pid2 = node.pid();
    node.answers("v2");

    let out = node.swap(&["--rollback"]);
    out.assert_code(0);
    assert!(kit::gone(pid2, Duration::from_secs(5)));
    assert_eq!(kit::current(&node.root()), "releases/v1");
    node.answers("v1");
    assert!(node.log().contains("v1 starts in"), "{}", node.log());
}

#[test]
fn a_stale_pidfile_is_said_and_the_release_starts() {
    let node = Node::new();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let stale = gone.id();
    gone.wait().unwrap();
    std::fs::write(node.pidfile(), format!("{stale}\n")).unwrap();
    let v1 = demo_release(node.path(), "v1", node.port);
    let out = node.swap_to(&v1, "v1");
    out.assert_code(0);
    assert!(
        out.stderr
            .contains(&format!("names process {stale}, which is gone")),
        "{}",
        out.stderr
    );
    node.answers("v1");
}

/// A `sleep` of the test's own, killed when dropped.
struct Stranger(std::process::Child);

impl Stranger {
    fn start() -> Stranger {
        Stranger(
            std::process::Command::new("sleep")
                .arg("300")
                .spawn()
                .unwrap(),
        )
    }

    fn pid(&self) -> i32 {
        self.0.id().cast_signed()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_pidfile_that_names_a_process_ugw_swap_did_not_start_is_refused_and_nothing_is_signalled() {
    let node = Node::new();
    let stranger = Stranger::start();
    let v1 = demo_release(node.path(), "v1", node.port);
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    for (case, text) in [
        ("written by hand", format!("{}\n", stranger.pid())),
        (
            // As ugw-swap writes it, but of a process that started at another time: the pid
            // was reused since.
            "reused",
            format!(
                "{}\n{{\"by\":\"ugw-swap --start\",\"start_ticks\":1,\"boot_id\":\"{}\"}}\n",
                stranger.pid(),
                boot.trim()
            ),
        ),
    ] {
        std::fs::write(node.pidfile(), &text).unwrap();
        let out = node.swap_to(&v1, "v1");
        out.assert_code(1);
        assert_eq!(out.last_step().error_kind(), "unsafe_input", "{case}");
        assert!(
            out.stderr
                .contains(&format!("process {} is not signalled", stranger.pid())),
            "{case}: {}",
            out.stderr
        );
        assert!(
            running(stranger.pid()),
            "{case}: the stranger was signalled"
        );
        assert!(!node.root().join("current").exists(), "{case}: switched");
        assert_eq!(std::fs::read_to_string(node.pidfile()).unwrap(), text);
    }
}

#[test]
fn a_symlink_planted_at_the_pidfile_is_refused_and_its_target_untouched() {
    let node = Node::new();
    let victim = node.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, node.pidfile()).unwrap();
    let v1 = demo_release(node.path(), "v1", node.port);
    let out = node.swap_to(&v1, "v1");
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "unsafe_input");
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::symlink_metadata(node.pidfile())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!node.root().join("current").exists());
}

#[test]
fn a_pidfile_another_user_can_write_is_refused() {
    let node = Node::new();
    let stranger = Stranger::start();
    std::fs::write(node.pidfile(), format!("{}\n", stranger.pid())).unwrap();
    std::fs::set_permissions(
        node.pidfile(),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let v1 = demo_release(node.path(), "v1", node.port);
    let out = node.swap_to(&v1, "v1");
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "unsafe_input");
    assert!(out.stderr.contains("only you or root"), "{}", out.stderr);
    assert!(running(stranger.pid()));
}

#[test]
fn a_service_that_ignores_sigterm_is_killed_after_the_stop_timeout_with_its_children() {
    let node = Node::new();
    // No port here: a shell that ignores TERM, with a child in its group.
    let stubborn = kit::script_release(
        node.path(),
        "v1",
        "trap '' TERM\nsleep 300 &\necho child $!\nwhile :; do sleep 1; done",
    );
    node.swap_to(&stubborn, "v1").assert_code(0);
    let pid1 = node.pid();
    let child: i32 = kit::eventually(Duration::from_secs(5), || node.log().contains("child "))
        .then(|| {
            node.log()
                .split("child ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .expect("the release says its child's pid");
    let v2 = demo_release(node.path(), "v2", node.port);
    let started = std::time::Instant::now();
    let out = node.swap(&[
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--stop-timeout",
        "500ms",
    ]);
    out.assert_code(0);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(out.stderr.contains("ignored SIGTERM"), "{}", out.stderr);
    assert!(kit::gone(pid1, Duration::from_secs(5)));
    assert!(
        kit::gone(child, Duration::from_secs(5)),
        "its child is left"
    );
    node.answers("v2");
}

/// `app-V-linux-amd64.tar.gz` of a release whose `bin/app` runs the demo service on `$PORT`,
/// answering the release's name (`$UGW_RELEASE`), and a `SHA256SUMS` of every archive, in
/// `dist`.
fn published(dist: &Path, version: &str) {
    let tree = dist.join("build").join(version);
    kit::app_script(
        &tree,
        &format!(
            "exec {} --listen \"127.0.0.1:$PORT\" --version-label \"$UGW_RELEASE\"",
            s(&kit::bin("ugw-demo-app"))
        ),
    );
    let name = format!("app-{version}-linux-amd64.tar.gz");
    let made = std::process::Command::new("tar")
        .args(["czf", s(&dist.join(&name)), "-C", s(&tree), "bin"])
        .status()
        .unwrap();
    assert!(made.success());
    let digest = ugw_shared::digest::sha256_file(&dist.join(&name)).unwrap();
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap_or_default()
        + &format!("{digest}  {name}\n");
    std::fs::write(dist.join("SHA256SUMS"), sums).unwrap();
}

/// The README's and ugw-swap(1)'s `--start` examples, as written, with only the host's paths
/// and port put in (`/opt/app`, `/run/app`, `127.0.0.1:8080`) and `$BASE`, `$V` set: the
/// pipeline installs v1.0.0, then upgrades to v2.0.0 (v1.0.0 stopped, v2.0.0 answering,
/// staging pruned to `--keep`), and the rollback line (where documented) runs v1.0.0 again.
#[test]
fn the_documented_start_examples_run_as_written() {
    if !kit::require("tar") {
        return;
    }
    let examples: Vec<crate::docs::Example> = crate::docs::all()
        .into_iter()
        .filter(|e| e.text.contains("--pidfile /run/app/app.pid"))
        .collect();
    for document in ["README.md:", "man/ugw-swap.1:"] {
        assert!(
            examples.iter().any(|e| e.source.starts_with(document)
                && e.text.contains("ugw-swap --root /opt/app --start")),
            "no --start pipeline in {document}: {examples:#?}"
        );
    }
    let documents: std::collections::BTreeSet<String> = examples
        .iter()
        .map(|e| e.source.split(':').next().unwrap().to_string())
        .collect();
    for document in documents {
        let node = Node::new();
        let dist = node.path().join("dist");
        std::fs::create_dir(&dist).unwrap();
        let ours: Vec<&crate::docs::Example> = examples
            .iter()
            .filter(|e| e.source.starts_with(&format!("{document}:")))
            .collect();
        let (root, run) = (node.root(), node.path().join("run"));
        let port = format!("127.0.0.1:{}", node.port);
        let substituted = |text: &str| {
            text.replace("/opt/app", s(&root))
                .replace("/run/app", s(&run))
                .replace("127.0.0.1:8080", &port)
        };
        let run_example = |example: &crate::docs::Example, version: &str| {
            let mut bash = std::process::Command::new("bash");
            bash.arg("-c")
                .arg(format!("set -euo pipefail\n{}", substituted(&example.text)))
                .env("PATH", kit::path_with_bins())
                .env("BASE", format!("file://{}", s(&dist)))
                .env("V", version)
                .env("PORT", node.port.to_string())
                .stdin(std::process::Stdio::null());
            let out = kit::run(bash);
            assert_eq!(
                out.code,
                0,
                "{}: {}\n{}\nlog:\n{}",
                example.source,
                example.text,
                out.stderr,
                node.log()
            );
            out
        };
        let pipeline = ours
            .iter()
            .find(|e| e.text.contains("ugw-fetch"))
            .unwrap_or_else(|| panic!("{document}: no pipeline"));
        for version in ["v1.0.0", "v2.0.0"] {
            published(&dist, version);
        }
        run_example(pipeline, "v1.0.0");
        let pid1 = node.pid();
        node.answers("v1.0.0");
        run_example(pipeline, "v2.0.0");
        assert!(
            kit::gone(pid1, Duration::from_secs(5)),
            "{document}: v1 runs"
        );
        node.answers("v2.0.0");
        assert_eq!(kit::current(&root), "releases/v2.0.0");
        // Moved, not copied: the staged folders are gone (and --keep found nothing more).
        assert_eq!(
            kit::fetched_names(&root.join("staging")),
            Vec::<String>::new(),
            "{document}"
        );
        if let Some(rollback) = ours.iter().find(|e| e.text.contains("--rollback")) {
            let pid2 = node.pid();
            run_example(rollback, "v2.0.0");
            assert!(kit::gone(pid2, Duration::from_secs(5)));
            node.answers("v1.0.0");
        }
    }
}

/// A child of the service that ignores SIGTERM and outlives it (the service itself stopped
/// at once) is killed with what is left of its session: it could hold the port.
#[test]
fn a_child_that_outlives_its_stopped_service_is_killed() {
    let node = Node::new();
    let parent = kit::script_release(
        node.path(),
        "v1",
        "sh -c \"trap '' TERM; exec sleep 300\" &\necho child $!\nexec sleep 300",
    );
    node.swap_to(&parent, "v1").assert_code(0);
    let pid1 = node.pid();
    assert!(kit::eventually(Duration::from_secs(5), || node
        .log()
        .contains("child ")));
    let child: i32 = node
        .log()
        .split("child ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap();
    let v2 = demo_release(node.path(), "v2", node.port);
    let out = node.swap_to(&v2, "v2");
    out.assert_code(0);
    assert!(kit::gone(pid1, Duration::from_secs(5)));
    assert!(kit::gone(child, Duration::from_secs(5)), "{}", out.stderr);
    assert!(
        out.stderr.contains("killed 1 process(es)"),
        "{}",
        out.stderr
    );
    node.answers("v2");
}
