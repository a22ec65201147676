//! Two services of one Compose project swapped by separate `ugw-swap --compose` runs (a web
//! and a worker, each a unit of its own): each keeps its own pin, its own way back and its
//! images under `--keep`, whatever the other does; a service already pinned in another set is
//! refused. Against the real Docker daemon and Compose, images from a loopback registry
//! (`kit::docker`), every container on the host network.

use crate::kit;
use crate::kit::docker::{self, Behaviour, DemoImage, Lab, serves};
use kit::{Outcome, s, tool};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A project of two services of the demo image: `web` on `web_port`, `worker` on
/// `worker_port`.
fn two_service_file(dir: &Path, repository: &str, web_port: u16, worker_port: u16) -> PathBuf {
    let file = dir.join("compose.yml");
    let service = |name: &str, port: u16| {
        format!(
            "  {name}:\n    image: \"{repository}:unpinned\"\n    network_mode: host\n    \
             command: [\"--listen\", \"127.0.0.1:{port}\"]\n"
        )
    };
    let text = format!(
        "services:\n{}{}",
        service("web", web_port),
        service("worker", worker_port)
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// `ugw-swap --compose FILE --project P --service S... ARGS` on `record`.
fn swap(file: &Path, project: &str, services: &[&str], record: &Path, args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.args(["--compose", s(file), "--project", project]);
    for service in services {
        cmd.args(["--service", service]);
    }
    cmd.args(["--record", s(record)]).args(args);
    kit::run_within(cmd, Duration::from_secs(180))
}

/// `--image IMAGE --restart-check` on `port`, plus `more`.
fn to(image: &DemoImage, port: u16, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--image".to_string(),
        image.by_digest(),
        "--restart-check".to_string(),
        format!("http://127.0.0.1:{port}/health/ready"),
    ];
    args.extend(more.iter().map(|a| (*a).to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn two_services_swapped_apart_in_one_project_keep_their_own_pins_rollbacks_and_images() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = Lab::of(&[
        ("1.0.0", Behaviour::Healthy),
        ("2.0.0", Behaviour::Healthy),
        ("3.0.0", Behaviour::Healthy),
    ]);
    let (v1, v2, v3) = (&lab.built[0], &lab.built[1], &lab.built[2]);
    let (web_port, worker_port) = (kit::free_port(), kit::free_port());
    let file = two_service_file(lab.dir.path(), &v1.repository, web_port, worker_port);
    let project = lab.cleanup.name("units");
    let record = lab.dir.path().join("run.json");
    let web = |args: &[String]| swap(&file, &project, &["web"], &record, &strs(args));
    let worker = |args: &[String]| swap(&file, &project, &["worker"], &record, &strs(args));

    web(&to(v1, web_port, &["--new"])).succeeds();
    worker(&to(v2, worker_port, &["--new"])).succeeds();
    web(&to(v2, web_port, &[])).succeeds();
    // The worker's swap to v3 keeps the web's pin in the project's override.
    let step = worker(&to(v3, worker_port, &[])).succeeds().last_step();
    assert_eq!(
        step.result["previous"],
        v2.by_digest(),
        "the worker's own previous"
    );
    let pinned =
        std::fs::read_to_string(lab.dir.path().join(format!(".ugw/{project}.override.yml")))
            .unwrap();
    assert!(
        pinned.contains(&v2.by_digest()) && pinned.contains(&v3.by_digest()),
        "both services' pins: {pinned}"
    );
    assert!(serves(web_port, "2.0.0") && serves(worker_port, "3.0.0"));

    // The web's rollback takes the web's own swap back (to v1), not the worker's, the run's
    // last (which would be v2), and leaves the worker on v3.
    let step = web(&[
        "--rollback".into(),
        "--restart-check".into(),
        format!("http://127.0.0.1:{web_port}/health/ready"),
    ])
    .succeeds()
    .last_step();
    assert_eq!(step.result["current"], v1.by_digest());
    assert!(serves(web_port, "1.0.0") && serves(worker_port, "3.0.0"));

    // Compose brought up whole from the operator's file and ugw's override (a reboot, an
    // operator's `up -d`) runs each service on its own pin.
    let override_file = lab.dir.path().join(format!(".ugw/{project}.override.yml"));
    let up = std::process::Command::new("docker-compose")
        .args(["-f", s(&file), "-f", s(&override_file), "-p", &project])
        .args(["up", "-d", "--force-recreate"])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(serves(web_port, "1.0.0") && serves(worker_port, "3.0.0"));

    // --keep 1 on the worker (now v1, before it v3) never removes the web's previous image
    // (v2), which no container runs.
    worker(&to(v1, worker_port, &["--keep", "1"])).succeeds();
    for image in [v1, v2, v3] {
        let inspect = std::process::Command::new("docker")
            .args(["image", "inspect", &image.by_digest()])
            .output()
            .unwrap();
        assert!(inspect.status.success(), "{} was removed", image.version);
    }

    // A service already pinned on its own is refused in another set; nothing changes.
    let both = swap(
        &file,
        &project,
        &["web", "worker"],
        &record,
        &strs(&to(v3, web_port, &[])),
    );
    both.fails_with(kit::Kind::Usage)
        .stderr_has("one pin and one way back")
        .stderr_has("swapped as --service web");
    assert!(serves(web_port, "1.0.0") && serves(worker_port, "1.0.0"));
}
