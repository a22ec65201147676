//! Issue 24: `ugw-drain --signal SIG --container NAME` stops a real container's main process
//! (`docker kill --signal`) and waits until the container has exited, within the step's
//! deadline; the result names the container's id and its exit code. The demo service runs
//! as the image `kit::docker` builds offline, on the host's network, on a free port.

use crate::kit;

use kit::docker::{self, Behaviour, Cleanup, Registry};
use std::time::{Duration, Instant};

/// A running container of the demo image named `PREFIX-what` on a free port: its name, id
/// and port.
fn demo_container(registry: &Registry, cleanup: &Cleanup, what: &str) -> (String, String, u16) {
    let image = docker::build_demo_image(
        registry,
        &cleanup.name(&format!("{what}-image")),
        "v1.0.0",
        Behaviour::Healthy,
    );
    docker::docker_ok(&["pull", &image.by_digest()]);
    let name = cleanup.name(what);
    let port = kit::free_port();
    let id = docker::run_demo(&name, &image.by_digest(), port);
    (name, id, port)
}

fn drain(args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(args);
    kit::run(cmd)
}

#[test]
fn quit_lets_the_request_in_flight_finish_and_waits_until_the_container_exited() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let cleanup = Cleanup::new();
    let (name, id, port) = demo_container(&registry, &cleanup, "web");
    let slow = format!("http://127.0.0.1:{port}/slow?ms=1500");
    let long = std::thread::spawn(move || (kit::load::get_url(&slow), Instant::now()));
    // The request has reached the service before the signal goes.
    assert!(
        kit::eventually(Duration::from_secs(5), || docker::logs(&name)
            .contains("/slow")),
        "{}",
        docker::logs(&name)
    );
    let out = drain(&["--signal", "QUIT", "--container", &name, "--timeout", "20s"]);
    let drain_ended = Instant::now();
    out.succeeds()
        .stderr_has(format!("sent QUIT to container {name}"));
    let (status, long_ended) = long.join().unwrap();
    assert_eq!(status, Ok(200), "the request in flight got its answer");
    assert!(
        long_ended <= drain_ended,
        "the drain ended before the request"
    );
    let step = out.last_step();
    assert!(step.changed);
    let result = step.result;
    assert_eq!(result["method"], "signal", "{result}");
    assert_eq!(result["container_id"], id.as_str(), "{result}");
    assert_eq!(result["exit_code"], 0, "{result}");
    assert_eq!(
        (
            result["state_before"].as_str(),
            result["state_after"].as_str()
        ),
        (Some("running"), Some("gone"))
    );
    assert!(result["waited_ms"].as_u64().unwrap() >= 500, "{result}");
    assert_eq!(docker::inspect(&id, "{{.State.Running}}"), "false");
    // Exited already: nothing to do, and its exit code is still said.
    let again = drain(&["--signal", "QUIT", "--container", &name]);
    again.succeeds();
    let again = again.last_step();
    assert!(!again.changed);
    assert_eq!(again.result["state_before"], "gone");
    assert_eq!(again.result["exit_code"], 0);
}

#[test]
fn a_container_that_does_not_exit_by_the_deadline_fails_with_timeout() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let cleanup = Cleanup::new();
    let (name, id, _) = demo_container(&registry, &cleanup, "stubborn");
    // The demo service has no handler for USR1, and the kernel drops a signal without one
    // for a namespace's PID 1: the container keeps running.
    let out = drain(&["--signal", "USR1", "--container", &name, "--timeout", "2s"]);
    out.fails_with(kit::Kind::Timeout)
        .stderr_has(format!("container {name} did not exit within"));
    let step = out.last_step();
    assert_eq!(step.exit, 1);
    assert_eq!(step.result["container_id"], id.as_str(), "{}", step.result);
    assert_eq!(step.result["state_after"], "running");
    assert!(step.result.get("exit_code").is_none(), "{}", step.result);
    assert!(
        step.elapsed_ms < 4000,
        "the deadline held: {} ms",
        step.elapsed_ms
    );
    assert_eq!(docker::inspect(&id, "{{.State.Running}}"), "true");
}

#[test]
fn a_container_that_does_not_exist_is_not_found_and_nothing_is_signalled() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let cleanup = Cleanup::new();
    let name = cleanup.name("absent");
    let out = drain(&["--signal", "QUIT", "--container", &name]);
    out.fails_with(kit::Kind::NotFound)
        .stderr_has(format!("there is no container {name}"));
    drain(&["--signal", "QUIT", "--container", &name, "--pid", "1234"]).assert_code(2);
}
