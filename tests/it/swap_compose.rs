//! `ugw-swap --compose FILE --service NAME` (issue 24) against the real Docker daemon and
//! Compose of this machine: images built offline and pushed to a loopback registry
//! (`kit::docker`), every container on the host network, everything removed by the
//! `Cleanup` guard. stop-first and start-first swaps (start-first under load through HAProxy,
//! 0 failed requests), a failing restart that brings the old container back, `--rollback`,
//! `--keep`, two swaps of one project at once, a record naming another run's digest, and
//! `--env-file` reaching Compose.

use crate::kit;
use crate::kit::docker::{self, Behaviour, DemoImage, Lab, compose_file, serves};
use kit::{Outcome, s, tool};
use std::path::Path;
use std::time::Duration;

/// `--compose FILE --project P --service api`: the service every test swaps.
fn the_service<'a>(file: &'a Path, project: &'a str) -> [&'a str; 6] {
    [
        "--compose",
        s(file),
        "--project",
        project,
        "--service",
        "api",
    ]
}

/// `ugw-swap --compose FILE --project P --service api ARGS`, on `record` when given.
fn swap(file: &Path, project: &str, record: Option<&Path>, args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.args(the_service(file, project));
    if let Some(record) = record {
        cmd.args(["--record", s(record)]);
    }
    cmd.args(args);
    kit::run_within(cmd, Duration::from_secs(180))
}

/// The demo service as 1.0.0 and 2.0.0 (healthy) and 3.0.0 (health 500), in a registry of
/// the test's own.
fn lab() -> Lab {
    Lab::of(&[
        ("1.0.0", Behaviour::Healthy),
        ("2.0.0", Behaviour::Healthy),
        ("3.0.0", Behaviour::Bad),
    ])
}

/// A record whose one ok `ugw-fetch --image` step, of run `step_run`, fetched `image`; the
/// record's own run is `record_run`.
fn image_record(record_run: &str, step_run: &str, image: &DemoImage) -> String {
    docker::fetched_image_record(
        record_run,
        step_run,
        &image.repository,
        &image.digest,
        &image.version,
    )
    .to_string()
}

#[test]
fn stop_first_pins_by_digest_rolls_back_brings_the_old_container_back_and_keeps() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = lab();
    let (dir, cleanup) = (&lab.dir, &lab.cleanup);
    let (v1, v2, bad) = (&lab.built[0], &lab.built[1], &lab.built[2]);
    let port = kit::free_port();
    let file = compose_file(dir.path(), &v1.repository, &port.to_string());
    let project = cleanup.name("stop");
    let record = dir.path().join("run.json");
    let check = format!("http://127.0.0.1:{port}/health/ready");

    let first = swap(
        &file,
        &project,
        Some(&record),
        &[
            "--new",
            "--image",
            &v1.by_digest(),
            "--restart-check",
            &check,
        ],
    );
    let step = first.succeeds().last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert!(serves(port, "1.0.0"));
    let pinned =
        std::fs::read_to_string(dir.path().join(format!(".ugw/{project}.override.yml"))).unwrap();
    assert!(pinned.contains(&v1.by_digest()), "{pinned}");
    assert_eq!(
        std::fs::read_to_string(&file)
            .unwrap()
            .matches("unpinned")
            .count(),
        1,
        "the operator's file is never rewritten"
    );

    let second = swap(
        &file,
        &project,
        Some(&record),
        &["--image", &v2.by_digest(), "--restart-check", &check],
    );
    let step = second.succeeds().last_step();
    assert_eq!(step.result["previous"], v1.by_digest());
    assert_eq!(step.result["current"], v2.by_digest());
    assert!(serves(port, "2.0.0"));
    let containers = step.result["compose"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(containers.len(), 1, "{containers:?}");

    // --rollback goes to the previous image of this run's own swap step.
    let back = swap(
        &file,
        &project,
        Some(&record),
        &["--rollback", "--restart-check", &check],
    );
    let step = back.succeeds().last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert_eq!(step.result["marked_failed"], v2.by_digest());
    assert!(serves(port, "1.0.0"));

    // A bad image (health 500): switched back, the old image's container serves again.
    let failed = swap(
        &file,
        &project,
        None,
        &[
            "--image",
            &bad.by_digest(),
            "--restart-check",
            &check,
            "--restart-timeout",
            "6s",
        ],
    );
    failed.fails_with(kit::Kind::RestartFailed);
    let step = failed.last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert_eq!(step.result["marked_failed"], bad.by_digest());
    assert!(serves(port, "1.0.0"));

    status_then_keep(&file, &project, &check, port, [v1, v2, bad]);
}

/// `status` names the pins after a failed restart switched back (current v1, previous v2),
/// then a swap to v2 with `--keep 1` keeps the current and previous images and removes the
/// bad one nothing uses.
fn status_then_keep(file: &Path, project: &str, check: &str, port: u16, built: [&DemoImage; 3]) {
    let [v1, v2, bad] = built;
    let mut status = tool("ugw-swap");
    status.arg("status").args(the_service(file, project));
    let listed = kit::run(status);
    let step = listed.succeeds().last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert_eq!(step.result["previous"], v2.by_digest());

    // --keep 1: the current and previous stay; the bad image, unused, goes.
    let kept = swap(
        file,
        project,
        None,
        &[
            "--image",
            &v2.by_digest(),
            "--restart-check",
            check,
            "--keep",
            "1",
        ],
    );
    let step = kept.succeeds().last_step();
    let removed = step.result["compose"]["removed_images"].to_string();
    assert!(removed.contains(&bad.digest), "{removed}");
    assert!(docker::image_present(&v2.by_digest()), "current kept");
    assert!(docker::image_present(&v1.by_digest()), "previous kept");
    assert!(
        !docker::image_present(&bad.by_digest()),
        "the unused older image removed"
    );
    assert!(serves(port, "2.0.0"));
}

#[test]
fn start_first_switches_slots_under_load_with_no_failed_request_and_a_bad_image_never_serves() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    if !kit::haproxy::HaProxy::available() {
        return;
    }
    let lab = lab();
    let (dir, cleanup) = (&lab.dir, &lab.cleanup);
    let (v1, v2, bad) = (&lab.built[0], &lab.built[1], &lab.built[2]);
    let (a, b) = (kit::free_port(), kit::free_port());
    let file = compose_file(dir.path(), &v1.repository, "${PORT}");
    let project = cleanup.name("blue");
    let slots = format!("{a},{b}");
    let start_first = |image: &DemoImage| {
        swap(
            &file,
            &project,
            None,
            &[
                "--image",
                &image.by_digest(),
                "--strategy",
                "start-first",
                "--port-env",
                "PORT",
                "--slots",
                &slots,
                "--restart-check",
                "http://127.0.0.1:{port}/health/ready",
                "--restart-timeout",
                "8s",
            ],
        )
    };
    let step = start_first(v1).succeeds().last_step();
    assert_eq!(step.result["compose"]["slot"], a);
    assert!(serves(a, "1.0.0"));

    let options = kit::haproxy::Options {
        check_path: "/health/ready".into(),
        backend_extra: vec!["option redispatch".into(), "retries 3".into()],
        ..kit::haproxy::Options::default()
    };
    let haproxy = kit::haproxy::HaProxy::start_with(
        &[
            kit::haproxy::Server::new("s1", &format!("127.0.0.1:{a}"), true),
            kit::haproxy::Server::new("s2", &format!("127.0.0.1:{b}"), true),
        ],
        &options,
    );
    assert!(haproxy.wait_status("s1", "UP", Duration::from_secs(10)));
    let load = kit::load::Load::start(
        &format!("{}/health/ready", haproxy.url()),
        50,
        Duration::from_secs(120),
    );

    let step = start_first(v2).succeeds().last_step();
    assert_eq!(step.result["compose"]["slot"], b);
    assert_eq!(step.result["previous"], v1.by_digest());
    assert!(serves(b, "2.0.0"));
    assert!(
        kit::eventually(Duration::from_secs(15), || docker::http_get(a, "/")
            .is_none()),
        "the old slot is stopped"
    );

    // The bad image starts on the idle slot, is never healthy, and is removed; slot b serves.
    let failed = start_first(bad);
    failed.fails_with(kit::Kind::RestartFailed);
    assert_eq!(failed.last_step().result["current"], v2.by_digest());
    assert!(
        docker::http_get(a, "/").is_none(),
        "the bad container is gone"
    );
    assert!(serves(b, "2.0.0"));

    let tally = load.stop();
    assert!(tally.sent > 100, "{tally:?}");
    assert_eq!(tally.bad(), 0, "{tally:?}");
}

#[test]
fn two_swaps_of_one_project_never_run_together_and_another_runs_digest_is_not_pinned() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = Lab::healthy(&["1.0.0", "2.0.0"]);
    let (dir, cleanup) = (&lab.dir, &lab.cleanup);
    let (v1, v2) = (&lab.built[0], &lab.built[1]);
    let port = kit::free_port();
    let file = compose_file(dir.path(), &v1.repository, &port.to_string());
    let project = cleanup.name("lock");

    // A record whose fetch step belongs to another run: its digest is not taken.
    let forged = dir.path().join("forged.json");
    std::fs::write(
        &forged,
        image_record(
            "20261207T100000Z-test-0001",
            "20261207T090000Z-other-0002",
            v1,
        ),
    )
    .unwrap();
    let refused = swap(&file, &project, Some(&forged), &[]);
    refused
        .fails_with(kit::Kind::Usage)
        .stderr_has("belongs to run 20261207T090000Z-other-0002")
        .stderr_lacks(&v1.digest);
    assert!(
        !dir.path()
            .join(format!(".ugw/{project}.override.yml"))
            .exists(),
        "nothing pinned"
    );

    // This run's own fetch step: its digest is pinned.
    let own = dir.path().join("own.json");
    std::fs::write(
        &own,
        image_record(
            "20261207T100000Z-test-0001",
            "20261207T100000Z-test-0001",
            v1,
        ),
    )
    .unwrap();
    let step = swap(&file, &project, Some(&own), &[])
        .succeeds()
        .last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert!(serves(port, "1.0.0"));

    // A swap whose health check never answers holds the project's lock for its restart.
    let never = format!("http://127.0.0.1:{}/", kit::free_port());
    let mut slow = tool("ugw-swap");
    slow.args(the_service(&file, &project)).args([
        "--image",
        &v2.by_digest(),
        "--restart-check",
        &never,
        "--restart-timeout",
        "10s",
    ]);
    slow.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let slow = slow.spawn().unwrap();
    let pinned = dir.path().join(format!(".ugw/{project}.override.yml"));
    assert!(kit::eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(&pinned).is_ok_and(|t| t.contains(&v2.digest))
    }));
    let busy = swap(
        &file,
        &project,
        None,
        &["--image", &v1.by_digest(), "--lock-timeout", "1s"],
    );
    busy.fails_with(kit::Kind::Busy);
    let status = kit::wait_bounded(slow, Duration::from_secs(60)).status;
    assert_eq!(status.code(), Some(1), "the slow swap's restart failed");
    assert!(serves(port, "1.0.0"), "switched back to the image before");
}

#[test]
fn a_fetch_step_whose_reference_is_not_its_image_and_digest_is_never_pinned() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    let file = compose_file(dir.path(), "127.0.0.1:5000/app", "1");
    // A forged step: its image and digest are the app's, its reference another image with
    // the same digest text.
    let run = "20261207T100000Z-test-0009";
    let mut record =
        docker::fetched_image_record(run, run, "127.0.0.1:5000/app", &digest, "v2.0.0");
    record["steps"][0]["result"]["reference"] = format!("127.0.0.1:5000/evil@{digest}").into();
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, record.to_string()).unwrap();
    swap(&file, "ugwtest-forged-ref", Some(&forged), &[])
        .fails_with(kit::Kind::BadRecord)
        .stderr_has("is not its image and digest");
    assert!(
        !dir.path()
            .join(".ugw/ugwtest-forged-ref.override.yml")
            .exists(),
        "nothing pinned"
    );
}

#[test]
fn the_env_file_given_reaches_compose_and_sets_what_the_compose_file_reads() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = Lab::of(&[("1.0.0", Behaviour::Healthy)]);
    let port = kit::free_port();
    // The port is only in the env file: without it Compose would start `--listen 127.0.0.1:`.
    let file = compose_file(lab.dir.path(), &lab.built[0].repository, "${APP_PORT}");
    let env_file = lab.dir.path().join("app.env");
    std::fs::write(&env_file, format!("APP_PORT={port}\n")).unwrap();
    let project = lab.cleanup.name("envfile");
    let check = format!("http://127.0.0.1:{port}/health/ready");
    let image = lab.built[0].by_digest();
    let record = lab.dir.path().join("run.json");
    swap(
        &file,
        &project,
        Some(&record),
        &[
            "--new",
            "--env-file",
            s(&env_file),
            "--image",
            &image,
            "--restart-check",
            &check,
        ],
    )
    .succeeds();
    assert!(
        serves(port, "1.0.0"),
        "the service listens on the env file's port"
    );
}
