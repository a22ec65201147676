//! A signal mid-swap on `ugw-swap --compose` (issue 24), against the real dockerd and
//! Compose: SIGTERM while a stop-first swap waits for the new container, SIGHUP while a
//! start-first swap waits for the new slot. Each ends consistent: the swap is taken back (the
//! image before pinned and serving, the new slot gone), the pins file unchanged, and the
//! record says interrupted with `current` the image before.

use crate::kit;
use crate::kit::docker::{self, DemoImage, serves, version_on};
use kit::{Outcome, s, tool};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `ugw-swap --compose FILE --project P --service api --image IMAGE ARGS`, not started.
fn swap(file: &Path, project: &str, image: &DemoImage, args: &[&str]) -> Command {
    let mut cmd = tool("ugw-swap");
    cmd.args([
        "--compose",
        s(file),
        "--project",
        project,
        "--service",
        "api",
    ])
    .args(["--image", &image.by_digest()])
    .args(args);
    cmd
}

/// Start `cmd`, wait until `ready`, send `signal`, and return how it ended.
fn interrupted_when(mut cmd: Command, ready: impl FnMut() -> bool, signal: i32) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let child: Child = cmd.spawn().unwrap();
    let pid = child.id().cast_signed();
    let seen = kit::eventually(Duration::from_secs(60), ready);
    kit::signal(pid, signal);
    let output = kit::wait_bounded(child, Duration::from_secs(90));
    let out = Outcome::from(&output, started.elapsed());
    assert!(
        seen,
        "the swap never got to the point to interrupt: {}",
        out.stderr
    );
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn sigterm_while_a_stop_first_swap_waits_takes_it_back_to_the_image_before() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = docker::Lab::healthy(&["1.0.0", "2.0.0"]);
    let (v1, v2) = (&lab.built[0], &lab.built[1]);
    let port = kit::free_port();
    let file = docker::compose_file(lab.dir.path(), &v1.repository, &port.to_string());
    let project = lab.cleanup.name("term");
    let check = format!("http://127.0.0.1:{port}/health/ready");
    kit::run_within(
        swap(&file, &project, v1, &["--restart-check", &check]),
        Duration::from_secs(120),
    )
    .succeeds();
    assert!(serves(port, "1.0.0"));
    let pins_file = lab.dir.path().join(format!(".ugw/{project}.pins.json"));
    let pins_before = read(&pins_file);

    // v2 comes up and serves, but its check (another port) never passes: the swap waits.
    let never = format!("http://127.0.0.1:{}/", kit::free_port());
    let cmd = swap(
        &file,
        &project,
        v2,
        &["--restart-check", &never, "--restart-timeout", "60s"],
    );
    let out = interrupted_when(
        cmd,
        || version_on(port).as_deref() == Some("2.0.0"),
        libc::SIGTERM,
    );
    out.fails_with(kit::Kind::Interrupted);
    assert_eq!(out.code, 143);
    let step = out.last_step();
    assert_eq!(step.status, "interrupted");
    assert_eq!(
        step.result["current"],
        v1.by_digest(),
        "the record says it went back"
    );
    let revert = step.result["restarts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(revert["phase"], "after_revert", "{revert}");
    assert_eq!(revert["ok"], true, "{revert}");
    assert!(serves(port, "1.0.0"), "the image before serves again");
    assert_eq!(read(&pins_file), pins_before, "the pins file is unchanged");
    let pinned = read(&lab.dir.path().join(format!(".ugw/{project}.override.yml")));
    assert!(
        pinned.contains(&v1.digest) && !pinned.contains(&v2.digest),
        "{pinned}"
    );

    // The project is what the pins say: a swap to v1 has nothing to do, and v2 can come again.
    let again = kit::run_within(
        swap(&file, &project, v2, &["--restart-check", &check]),
        Duration::from_secs(120),
    );
    again.succeeds();
    assert!(serves(port, "2.0.0"));
}

#[test]
fn sighup_while_a_start_first_swap_waits_removes_the_new_slot_and_the_old_one_serves() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = docker::Lab::healthy(&["1.0.0", "2.0.0"]);
    let (v1, v2) = (&lab.built[0], &lab.built[1]);
    let (a, b) = (kit::free_port(), kit::free_port());
    let file = docker::compose_file(lab.dir.path(), &v1.repository, "${PORT}");
    let project = lab.cleanup.name("hup");
    let slots = format!("{a},{b}");
    let start_first = |check: &str| {
        vec![
            "--strategy".to_string(),
            "start-first".into(),
            "--port-env".into(),
            "PORT".into(),
            "--slots".into(),
            slots.clone(),
            "--restart-check".into(),
            check.to_string(),
            "--restart-timeout".into(),
            "60s".into(),
        ]
    };
    let args = start_first("http://127.0.0.1:{port}/health/ready");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kit::run_within(swap(&file, &project, v1, &args), Duration::from_secs(120)).succeeds();
    assert!(serves(a, "1.0.0"));
    let pins_file = lab.dir.path().join(format!(".ugw/{project}.pins.json"));
    let pins_before = read(&pins_file);

    let never = format!("http://127.0.0.1:{}/", kit::free_port());
    let args = start_first(&never);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmd = swap(&file, &project, v2, &args);
    let out = interrupted_when(
        cmd,
        || version_on(b).as_deref() == Some("2.0.0"),
        libc::SIGHUP,
    );
    out.fails_with(kit::Kind::Interrupted);
    assert_eq!(out.code, 129);
    let step = out.last_step();
    assert_eq!(
        step.result["current"],
        v1.by_digest(),
        "the record says it is not switched"
    );
    assert_eq!(step.result["compose"]["slot"], a);
    assert!(
        kit::eventually(Duration::from_secs(15), || docker::http_get(b, "/")
            .is_none()),
        "the new slot is removed"
    );
    assert_eq!(
        version_on(a).as_deref(),
        Some("1.0.0"),
        "the old slot never stopped"
    );
    assert_eq!(read(&pins_file), pins_before, "the pins file is unchanged");
    assert!(
        !lab.dir
            .path()
            .join(format!(".ugw/{project}-{b}.override.yml"))
            .exists(),
        "the new slot's pin is removed"
    );
}
