//! `ugw-swap --compose` killed between the pin write and `up -d` (`compose.after-pin-write`),
//! against the real Docker daemon and Compose: the demo service built offline into two images
//! on a loopback registry (`kit::docker`), on the host network, removed by the `Cleanup`
//! guard. After the kill: the override and pins files parse, the container is still the old
//! digest and serves, the record's last step is still the swap before; a rerun completes and
//! serves the new version, and `--rollback` of the rerun's record puts the old digest back.

use super::scenarios::run_killed;
use crate::kit;
use crate::kit::docker::{self, Behaviour, Cleanup, DemoImage, Docker, Registry};
use kit::{Outcome, s, tool};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Compose file in `dir` with one service `api` of `repository` on the host network,
/// listening on `port`.
fn compose_file(dir: &Path, repository: &str, port: u16) -> PathBuf {
    let file = dir.join("compose.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  api:\n    image: \"{repository}:unpinned\"\n    network_mode: host\n    \
             command: [\"--listen\", \"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    file
}

/// A stop-first swap of `api` in `project` on `record`, `args` after.
fn swap_cmd(file: &Path, project: &str, record: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = tool("ugw-swap");
    cmd.args([
        "--compose",
        s(file),
        "--project",
        project,
        "--service",
        "api",
        "--record",
        s(record),
    ])
    .args(args);
    cmd
}

fn swap(file: &Path, project: &str, record: &Path, args: &[&str]) -> Outcome {
    kit::run_within(
        swap_cmd(file, project, record, args),
        Duration::from_secs(180),
    )
}

/// The version the demo on `port` answers with, once it answers 200.
fn version_on(port: u16) -> Option<String> {
    let (code, body) = docker::http_get(port, "/health/ready")?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    (code == 200).then(|| value["version"].as_str().unwrap_or("").to_string())
}

fn serves(port: u16, version: &str) -> bool {
    kit::eventually(Duration::from_secs(20), || {
        version_on(port).as_deref() == Some(version)
    })
}

/// The repository digests of the image the project's one running container was made from.
fn running_digests(project: &str) -> String {
    let ids = docker::docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "one container of {project}: {ids:?}");
    let image = docker::inspect(ids[0], "{{.Image}}");
    docker::inspect(&image, "{{json .RepoDigests}}")
}

/// Compose itself reads FILE with the override: `config -q` fails on a half-written one.
fn compose_reads(docker: &Docker, project: &str, file: &Path, override_file: &Path) -> Outcome {
    let mut cmd = docker.compose(project, file);
    cmd.args(["--file", s(override_file), "config", "-q"]);
    kit::run_within(cmd, Duration::from_secs(60))
}

#[test]
fn killed_between_the_pin_write_and_up_the_old_digest_serves_a_rerun_and_its_rollback_complete() {
    let Some(docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cleanup = Cleanup::new();
    let registry = Registry::start(dir.path());
    let repo = cleanup.name("api");
    let built: Vec<DemoImage> = ["1.0.0", "2.0.0"]
        .iter()
        .map(|v| docker::build_demo_image(&registry, &repo, v, Behaviour::Healthy))
        .collect();
    let (v1, v2) = (&built[0], &built[1]);
    let port = kit::free_port();
    let file = compose_file(dir.path(), &v1.repository, port);
    let project = cleanup.name("crash");
    let record = dir.path().join("run.json");
    let check = format!("http://127.0.0.1:{port}/health/ready");
    let override_file = dir.path().join(format!(".ugw/{project}.override.yml"));
    let pins_file = dir.path().join(format!(".ugw/{project}.pins.json"));

    swap(
        &file,
        &project,
        &record,
        &[
            "--new",
            "--image",
            &v1.by_digest(),
            "--restart-check",
            &check,
        ],
    )
    .assert_code(0);
    assert!(serves(port, "1.0.0"));

    let (ended, _) = run_killed(
        swap_cmd(
            &file,
            &project,
            &record,
            &["--image", &v2.by_digest(), "--restart-check", &check],
        ),
        Some("compose.after-pin-write"),
        None,
    );
    assert!(
        ended.killed(),
        "compose.after-pin-write was never hit (exit {:?}): {}",
        ended.code,
        ended.stderr
    );

    // Whole files under their final names: the override pins the new digest (written before
    // the kill), the pins still say the old one is current (they move only after up).
    let pinned = std::fs::read_to_string(&override_file).unwrap();
    assert!(pinned.contains(&v2.by_digest()), "{pinned}");
    compose_reads(&docker, &project, &file, &override_file).assert_code(0);
    let pins: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pins_file).unwrap()).unwrap();
    assert_eq!(pins["units"]["api"]["current"], v1.by_digest(), "{pins}");
    // Nothing was recreated: the old digest's container serves.
    assert!(running_digests(&project).contains(&v1.digest));
    assert!(serves(port, "1.0.0"));
    // The record parses and its last step is still the swap to v1 (the killed run wrote none).
    let text = std::fs::read_to_string(&record).unwrap();
    let mut steps = kit::parse_record(&text).steps;
    let last = steps.pop().unwrap();
    assert_eq!(last.status, "ok");
    assert_eq!(last.result["current"], v1.by_digest());

    // A rerun completes: v2 is up and serves.
    let rerun = swap(
        &file,
        &project,
        &record,
        &["--image", &v2.by_digest(), "--restart-check", &check],
    );
    let step = rerun.succeeds().last_step();
    assert_eq!(step.result["previous"], v1.by_digest());
    assert_eq!(step.result["current"], v2.by_digest());
    assert!(serves(port, "2.0.0"));
    assert!(running_digests(&project).contains(&v2.digest));

    // And the failure path on that record puts the old digest back.
    let back = swap(
        &file,
        &project,
        &record,
        &["--rollback", "--restart-check", &check],
    );
    let step = back.succeeds().last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert!(serves(port, "1.0.0"));
    assert!(running_digests(&project).contains(&v1.digest));
}
