//! `ugw-swap --compose --strategy start-first` with `--drain-cmd` and `--drain-grace` in front
//! of a real HAProxy (issue 24): the drain command runs once the new slot is healthy, with
//! `$UGW_DRAIN_PORT` and `$UGW_LIVE_PORT`, and drains the old slot through HAProxy's runtime
//! API (`ugw-drain --haproxy`: HAProxy's own state says so), the old slot keeps serving for the
//! grace, then stops. A drain command that fails takes the swap back: exit 1
//! (`restart_failed`), the new slot removed, the old one never stopped, the pins unchanged.

use crate::kit;
use crate::kit::docker::{self, Behaviour, Cleanup, DemoImage, Registry, version_on};
use crate::kit::haproxy::{HaProxy, Options, Server};
use kit::{Outcome, s, tool};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A Compose file in `dir` whose service `api` listens on `${PORT}`.
fn compose_file(dir: &Path, repository: &str) -> PathBuf {
    let file = dir.join("compose.yml");
    let text = format!(
        "services:\n  api:\n    image: \"{repository}:unpinned\"\n    network_mode: host\n"
    ) + "    command: [\"--listen\", \"127.0.0.1:${PORT}\"]\n";
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn the_drain_command_drains_the_old_slot_in_haproxy_and_its_failure_takes_the_swap_back() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    if !HaProxy::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cleanup = Cleanup::new();
    let registry = Registry::start(dir.path());
    let repo = cleanup.name("api");
    let built: Vec<DemoImage> = ["1.0.0", "2.0.0", "3.0.0"]
        .iter()
        .map(|v| docker::build_demo_image(&registry, &repo, v, Behaviour::Healthy))
        .collect();
    let (v1, v2, v3) = (&built[0], &built[1], &built[2]);
    let (a, b) = (kit::free_port(), kit::free_port());
    let file = compose_file(dir.path(), &v1.repository);
    let project = cleanup.name("drain");
    let slots = format!("{a},{b}");
    let options = Options {
        check_path: "/health/ready".into(),
        ..Options::default()
    };
    let haproxy = HaProxy::start_with(
        &[
            Server::new(&format!("p{a}"), &format!("127.0.0.1:{a}"), true),
            Server::new(&format!("p{b}"), &format!("127.0.0.1:{b}"), true),
        ],
        &options,
    );
    let seen = dir.path().join("drain-cmd-saw");
    let swap = |image: &DemoImage, drain_cmd: &str, grace: &str| -> Outcome {
        let mut cmd = tool("ugw-swap");
        cmd.args([
            "--compose",
            s(&file),
            "--project",
            &project,
            "--service",
            "api",
        ])
        .args(["--image", &image.by_digest(), "--strategy", "start-first"])
        .args(["--port-env", "PORT", "--slots", &slots])
        .args(["--restart-check", "http://127.0.0.1:{port}/health/ready"])
        .args(["--drain-cmd", drain_cmd, "--drain-grace", grace])
        .env("PATH", kit::path_with_bins())
        .env("ADMIN", haproxy.admin_socket())
        .env("SEEN", &seen);
        kit::run_within(cmd, Duration::from_secs(120))
    };
    let drain_cmd = "echo \"$UGW_DRAIN_PORT $UGW_LIVE_PORT\" > \"$SEEN\" && \
                     ugw-drain --in none --output none --haproxy \"$ADMIN\" \
                     --server \"app/p$UGW_DRAIN_PORT\" --timeout 10s";

    swap(v1, drain_cmd, "0s").succeeds();
    assert!(!seen.exists(), "no old slot: nothing to drain");
    assert!(haproxy.wait_status(&format!("p{a}"), "UP", Duration::from_secs(10)));

    let switched = swap(v2, drain_cmd, "3s");
    let step = switched.succeeds().last_step();
    assert_eq!(step.result["compose"]["slot"], b);
    let ran = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        ran.trim(),
        format!("{a} {b}"),
        "UGW_DRAIN_PORT and UGW_LIVE_PORT"
    );
    // HAProxy's own state: the old slot's server is in drain (admin state bit 0x08).
    let state = haproxy.server_state(&format!("p{a}"));
    assert_eq!(state["srv_admin_state"], "8", "{state:?}");
    let since_drain = SystemTime::now()
        .duration_since(std::fs::metadata(&seen).unwrap().modified().unwrap())
        .unwrap();
    assert!(
        since_drain >= Duration::from_secs(3),
        "the old slot was stopped only after --drain-grace: {since_drain:?}"
    );
    assert!(
        kit::eventually(Duration::from_secs(15), || docker::http_get(a, "/")
            .is_none()),
        "the old slot stopped"
    );
    assert_eq!(version_on(b).as_deref(), Some("2.0.0"));
    haproxy.set_state(&format!("p{a}"), "ready");

    // A drain command that fails: taken back, slot b never stopped.
    let pins_file = dir.path().join(format!(".ugw/{project}.pins.json"));
    let pins_before = std::fs::read_to_string(&pins_file).unwrap();
    let failed = swap(v3, "echo balancer unreachable >&2; exit 3", "0s");
    let new_slot_pin = dir.path().join(format!(".ugw/{project}-{a}.override.yml"));
    taken_back_after_a_failed_drain(
        &failed,
        v2,
        (a, b),
        (&pins_file, &pins_before),
        &new_slot_pin,
    );
}

/// A swap whose drain command failed (exit 3) was taken back: the old slot `b` (on `live`)
/// never stopped, the new slot `a` and its pin removed, the pins file as it was.
fn taken_back_after_a_failed_drain(
    failed: &Outcome,
    live: &DemoImage,
    (a, b): (u16, u16),
    (pins_file, pins_before): (&Path, &str),
    new_slot_pin: &Path,
) {
    failed
        .fails_with(kit::Kind::RestartFailed)
        .stderr_has("--drain-cmd failed (exit 3")
        .stderr_has("balancer unreachable");
    let step = failed.last_step();
    assert_eq!(
        step.result["current"],
        live.by_digest(),
        "the record says it went back"
    );
    assert_eq!(step.result["compose"]["slot"], b);
    assert_eq!(
        version_on(b).as_deref(),
        Some("2.0.0"),
        "the old slot kept serving"
    );
    assert!(
        kit::eventually(Duration::from_secs(15), || docker::http_get(a, "/")
            .is_none()),
        "the new slot is removed"
    );
    assert_eq!(std::fs::read_to_string(pins_file).unwrap(), pins_before);
    assert!(!new_slot_pin.exists(), "the new slot's pin is removed");
}
