//! `ugw-swap --compose --strategy start-first` on a service with a Docker HEALTHCHECK (Compose
//! `healthcheck:`), against the real dockerd and Compose (issue 24): the new slot counts as
//! healthy only when Docker's own health state says so (no `--restart-check` is given), and
//! an image whose healthcheck fails is never switched to: the old slot keeps serving, exit 1,
//! the pin stays on the image before. The images have no shell or curl, so the healthcheck is
//! `ugw-wait-healthy` itself, put in `/app` by `ImageSpec.binaries`.

use crate::kit;
use crate::kit::docker::{self, Behaviour, Cleanup, DemoImage, ImageSpec, Registry};
use kit::{Outcome, s, tool};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Compose file in `dir` whose service `api` listens on `${PORT}` and whose healthcheck asks
/// its own `/health/ready` through `/app/ugw-wait-healthy` (Compose interpolates `${PORT}` in
/// `test:` as in `command:`, from the environment ugw-swap gives it).
fn compose_file(dir: &Path, repository: &str) -> PathBuf {
    let file = dir.join("compose.yml");
    let text = format!(
        "services:\n  api:\n    image: \"{repository}:unpinned\"\n    network_mode: host\n"
    ) + concat!(
        "    command: [\"--listen\", \"127.0.0.1:${PORT}\"]\n",
        "    healthcheck:\n",
        "      test: [\"CMD\", \"/app/ugw-wait-healthy\", \"--in\", \"none\", \"--output\", \"none\",\n",
        "             \"--url\", \"http://127.0.0.1:${PORT}/health/ready\", \"--timeout\", \"1s\"]\n",
        "      interval: 1s\n",
        "      timeout: 3s\n",
        "      retries: 2\n",
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Docker's health state of a container (`healthy`, `unhealthy`, `starting`).
fn health(container: &str) -> String {
    docker::inspect(container, "{{.State.Health.Status}}")
}

/// The demo service as `version` with `ugw-wait-healthy` beside it for the healthcheck.
fn image(registry: &Registry, repo: &str, version: &str, behaviour: Behaviour) -> DemoImage {
    let mut spec = ImageSpec::new(repo, version, behaviour);
    spec.binaries = vec!["ugw-wait-healthy".into()];
    docker::build_image(registry, &spec)
}

#[test]
fn start_first_waits_on_dockers_healthcheck_and_never_switches_to_an_unhealthy_image() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cleanup = Cleanup::new();
    let registry = Registry::start(dir.path());
    let repo = cleanup.name("api");
    let v1 = image(&registry, &repo, "1.0.0", Behaviour::Healthy);
    // Not ready for 4 s: a swap that took "running for --alive-for (1s)" as healthy would
    // stop the old slot while the new one still answers 503.
    let slow = Behaviour::Flags(vec!["--ready-after".into(), "4s".into()]);
    let v2 = image(&registry, &repo, "2.0.0", slow);
    let bad = image(&registry, &repo, "3.0.0", Behaviour::Bad);
    let (a, b) = (kit::free_port(), kit::free_port());
    let file = compose_file(dir.path(), &v1.repository);
    let project = cleanup.name("hc");
    let slots = format!("{a},{b}");
    // No --restart-check: the only health judge is Docker's healthcheck.
    let swap = |image: &DemoImage| -> Outcome {
        let mut cmd = tool("ugw-swap");
        cmd.args([
            "--compose",
            s(&file),
            "--project",
            &project,
            "--service",
            "api",
        ]);
        cmd.args(["--image", &image.by_digest(), "--strategy", "start-first"]);
        cmd.args(["--port-env", "PORT", "--slots", &slots]);
        cmd.args(["--drain-grace", "0s", "--restart-timeout", "25s"]);
        kit::run_within(cmd, Duration::from_secs(120))
    };

    let first = swap(&v1);
    let step = first.succeeds().last_step();
    assert_eq!(step.result["compose"]["slot"], a);
    let container = step.result["compose"]["containers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(health(&container), "healthy");

    let second = swap(&v2);
    let step = second.succeeds().last_step();
    assert_eq!(step.result["compose"]["slot"], b);
    assert_eq!(
        docker::version_on(b).as_deref(),
        Some("2.0.0"),
        "the new slot was ready when the swap said so"
    );
    assert!(
        step.result["restarts"][0]["elapsed_ms"].as_u64().unwrap() >= 4000,
        "the swap waited for the healthcheck: {}",
        step.result["restarts"]
    );
    let container = step.result["compose"]["containers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(health(&container), "healthy");
    assert!(
        kit::eventually(Duration::from_secs(15), || docker::http_get(a, "/")
            .is_none()),
        "the old slot is stopped once the new one is healthy"
    );

    // Its /health/ready answers 500: Docker marks it unhealthy, and it is never switched to.
    let failed = swap(&bad);
    failed.fails_with(kit::Kind::RestartFailed);
    let step = failed.last_step();
    assert_eq!(step.result["current"], v2.by_digest(), "pinned back");
    assert_eq!(step.result["marked_failed"], bad.by_digest());
    let outcome = step.result["restarts"][0]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("Docker's healthcheck: unhealthy"),
        "{outcome}"
    );
    assert_eq!(
        docker::version_on(b).as_deref(),
        Some("2.0.0"),
        "the old slot kept serving"
    );
    assert!(
        docker::http_get(a, "/").is_none(),
        "the unhealthy container is gone"
    );
    let pins: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!(".ugw/{project}.pins.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(pins["units"]["api"]["current"], v2.by_digest());
    assert_eq!(pins["units"]["api"]["slot"], b);
    assert!(
        !dir.path()
            .join(format!(".ugw/{project}-{a}.override.yml"))
            .exists(),
        "the failed slot's pin is removed"
    );
}
