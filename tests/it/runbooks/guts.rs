//! The Guts node's upgrade: validators one at a time, the leader last (see the parent module
//! for the lab).

use super::*;

const VALIDATORS: [&str; 4] = ["validator1", "validator2", "validator3", "validator4"];

fn guts_lab() -> Option<Lab> {
    Lab::start("guts", &["python3", "sha256sum"], &[])
}

fn guts_upgrade(lab: &Lab, version: &str) -> kit::Outcome {
    let conf = format!("{}/upgrade.conf", lab.s());
    lab.run(
        "validator-upgrade.sh",
        &[version],
        &[("GUTS_UPGRADE_CONF", &conf)],
    )
}

#[test]
fn guts_validators_go_one_at_a_time_and_the_leader_last() {
    let Some(lab) = guts_lab() else { return };
    let out = guts_upgrade(&lab, "v1.1.0");
    assert_eq!(out.code, 0, "{}", out.stderr);

    let new = lab.file("www/guts-node-v1.1.0-linux-amd64");
    let old = lab.file("www/guts-node-v1.0.0-linux-amd64");
    let mut spans = Vec::new();
    for v in VALIDATORS {
        let record = record_with(
            &lab,
            &format!("state/records/{v}.json"),
            true,
            &[
                "ugw-backup ok",
                "ugw-fetch ok",
                "ugw-swap ok",
                "ugw-wait-healthy ok",
            ],
        );
        assert!(record.steps.iter().all(|s| s.host == v), "{record:#?}");
        assert_eq!(lab.served(v), "v1.1.0", "{v}");
        assert_eq!(lab.file(&format!("{v}/bin/guts-node")), new, "{v}");
        assert_eq!(lab.file(&format!("{v}/bin/guts-node.ugw-prev")), old, "{v}");
        assert!(lab.exists(&format!("state/backups/{v}/{v}-before-v1.1.0.tar.gz")));
        let (first, last) = (&record.steps[0], record.steps.last().unwrap());
        spans.push((v, span(first).0, span(last).1));
    }
    // One at a time: each validator started after the one before it was healthy; the leader
    // (validator3) last.
    spans.sort_by_key(|&(_, start, _)| start);
    let order: Vec<&str> = spans.iter().map(|&(v, _, _)| v).collect();
    assert_eq!(
        order,
        ["validator1", "validator2", "validator4", "validator3"],
    );
    for pair in spans.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "overlap: {pair:?}");
    }
    let fleet = lab.record("state/records/fleet.json");
    assert!(fleet.ok, "{fleet:#?}");
    assert_eq!(steps(&fleet), ["ugw-verify ok"]);
}

#[test]
fn guts_a_validator_that_fails_gets_its_binary_back_and_the_rollout_stops() {
    let Some(lab) = guts_lab() else { return };
    let pids: Vec<String> = VALIDATORS.iter().map(|v| lab.pid(v)).collect();
    let out = guts_upgrade(&lab, "v1.2.0");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/records/validator1.json",
        false,
        &[
            "ugw-backup ok",
            "ugw-fetch ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
        ],
    );
    assert_eq!(record.steps[3].error_kind(), "fail_condition");
    // The binary marked failed is the one fetched (by its sha256).
    assert_eq!(
        record.steps[4].result["marked_failed"],
        record.steps[1].result["sha256"]
    );
    let old = lab.file("www/guts-node-v1.0.0-linux-amd64");
    assert_eq!(lab.file("validator1/bin/guts-node"), old);
    assert_eq!(
        lab.file("validator1/bin/guts-node.ugw-failed"),
        lab.file("www/guts-node-v1.2.0-linux-amd64")
    );
    assert_eq!(lab.served("validator1"), "v1.0.0");
    // The others were never touched: no record, the same binary and process as before.
    for (v, pid) in VALIDATORS.iter().zip(&pids).skip(1) {
        assert!(!lab.exists(&format!("state/records/{v}.json")), "{v}");
        assert_eq!(lab.file(&format!("{v}/bin/guts-node")), old, "{v}");
        assert!(!lab.exists(&format!("{v}/bin/guts-node.ugw-prev")), "{v}");
        assert_eq!(&lab.pid(v), pid, "{v} was restarted");
        assert_eq!(lab.served(v), "v1.0.0", "{v}");
    }
    stop_and_check(lab);
}

/// The lab's nodes have ugw-swap --start as their service manager, and the waits watch the
/// process it started: a node that dies after its start (past --alive-for) fails the wait at
/// once, not at the sync timeout, and gets its old binary back.
#[test]
fn guts_a_node_that_dies_after_its_start_fails_the_wait_at_once_and_gets_its_binary_back() {
    let Some(lab) = guts_lab() else { return };
    let out = guts_upgrade(&lab, "v1.3.0");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/records/validator1.json",
        false,
        &[
            "ugw-backup ok",
            "ugw-fetch ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
        ],
    );
    let wait = &record.steps[3];
    assert_eq!(wait.error_kind(), "process_exited", "{wait:#?}");
    // The lab's SYNC_TIMEOUT is 20 s; the node dies 5 s after its start.
    assert!(wait.elapsed_ms < 15_000, "{wait:#?}");
    assert_eq!(
        lab.file("validator1/bin/guts-node"),
        lab.file("www/guts-node-v1.0.0-linux-amd64")
    );
    assert_eq!(lab.served("validator1"), "v1.0.0");
    assert!(!lab.exists("state/records/validator2.json"));
    stop_and_check(lab);
}

// ---- the blue-green method (guts/blue-green.sh) ----

/// The blue-green lab (guts/blue-green-lab.sh): the node's images in a loopback registry, the
/// blue and green Compose projects, HAProxy in front (blue serving). Fields drop in order:
/// the lab (`lab_stop` takes its projects down and stops the registry and HAProxy), then the
/// guard that removes anything left under the test's Docker prefix.
struct BlueGreen {
    lab: Lab,
    _docker: kit::docker::Cleanup,
}

fn blue_green_lab() -> Option<BlueGreen> {
    kit::docker::require_docker()?;
    if !HaProxy::available() || !kit::require("python3") {
        return None;
    }
    let docker = kit::docker::Cleanup::new();
    let lab = Lab {
        dir: tempfile::Builder::new()
            .prefix("ugw-rb-bg-")
            .tempdir()
            .unwrap(),
        runbook: "guts",
    };
    let script = lab.script("blue-green-lab.sh");
    let out = lab.bash(
        &[&script, lab.s()],
        &[("LAB_DOCKER_PREFIX", docker.prefix())],
    );
    assert_eq!(out.code, 0, "blue-green-lab.sh failed:\n{}", out.stderr);
    Some(BlueGreen {
        lab,
        _docker: docker,
    })
}

impl BlueGreen {
    fn upgrade(&self, version: &str) -> kit::Outcome {
        let conf = format!("{}/blue-green.conf", self.lab.s());
        self.lab.run(
            "blue-green.sh",
            &[version],
            &[("GUTS_BLUE_GREEN_CONF", &conf)],
        )
    }

    /// The port of the balancer's frontend (`haproxy`), or of one colour.
    fn port(&self, what: &str) -> u16 {
        self.lab.port(what)
    }

    /// Constant load through the balancer.
    fn load(&self) -> Load {
        Load::start(
            &format!("http://127.0.0.1:{}/health/ready", self.port("haproxy")),
            40,
            Duration::from_secs(150),
        )
    }

    /// HAProxy's view of `colour` (see `haproxy_state`).
    fn haproxy_state(&self, colour: &str) -> (u32, u32) {
        haproxy_state(&self.lab.path().join("haproxy/admin.sock"), "guts", colour)
    }

    /// The version `colour` answers on its own port (`None`: nothing answers there).
    fn colour_serves(&self, colour: &str) -> Option<String> {
        let (status, body) = get(self.port(colour), "/health/ready", &[]);
        (status == 200).then(|| version_in(&body))
    }

    /// The version the balancer answers, read by hand.
    fn balancer_serves(&self) -> String {
        let (status, body) = get(self.port("haproxy"), "/health/ready", &[]);
        assert_eq!(status, 200, "{body}");
        version_in(&body)
    }

    fn live(&self) -> String {
        String::from_utf8(self.lab.file("state/live"))
            .unwrap()
            .trim()
            .to_string()
    }
}

#[test]
fn guts_blue_green_switches_to_the_new_colour_under_load_with_no_failed_request() {
    let Some(bg) = blue_green_lab() else { return };
    let load = bg.load();
    let out = bg.upgrade("v1.1.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");
    assert!(tally.ok >= 40, "too little load to tell: {tally:?}");

    record_with(
        &bg.lab,
        "state/blue-green-v1.1.0.json",
        true,
        &[
            "ugw-fetch ok",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
            "ugw-drain ok",
            "ugw-drain ok",
            "ugw-verify ok",
            "ugw-drain ok",
        ],
    );
    // Green serves, in the backend and UP; blue is out (maint) and stopped.
    assert_eq!(bg.live(), "green");
    assert_eq!(bg.balancer_serves(), "v1.1.0");
    assert_eq!(bg.haproxy_state("green"), (2, 0));
    assert_eq!(
        bg.haproxy_state("blue").1 & 1,
        1,
        "blue still in the backend"
    );
    assert_eq!(bg.colour_serves("blue"), None, "blue still runs");
}

#[test]
fn guts_blue_green_a_colour_never_healthy_is_never_switched_in() {
    let Some(bg) = blue_green_lab() else { return };
    let load = bg.load();
    let out = bg.upgrade("v1.2.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");

    let record = record_with(
        &bg.lab,
        "state/blue-green-v1.2.0.json",
        false,
        &["ugw-fetch ok", "ugw-swap failed"],
    );
    assert_eq!(record.steps[1].error_kind(), "restart_failed");
    // Nothing switched: blue serves v1.0.0, green idle and back on v1.0.0.
    assert_eq!(bg.live(), "blue");
    assert_eq!(bg.balancer_serves(), "v1.0.0");
    assert_eq!(bg.haproxy_state("blue"), (2, 0));
    assert_eq!(
        bg.haproxy_state("green").1 & 1,
        1,
        "green put in the backend"
    );
    assert_eq!(bg.colour_serves("green").as_deref(), Some("v1.0.0"));
}

#[test]
fn guts_blue_green_a_check_that_fails_after_the_switch_switches_back() {
    let Some(bg) = blue_green_lab() else { return };
    let out = bg.upgrade("v1.3.0");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = record_with(
        &bg.lab,
        "state/blue-green-v1.3.0.json",
        false,
        &[
            "ugw-fetch ok",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
            "ugw-drain ok",
            "ugw-drain ok",
            "ugw-verify failed",
            "ugw-drain ok",
            "ugw-drain ok",
            "ugw-swap ok",
        ],
    );
    // The switch back: blue's drain undone, green drained again, green's image taken back.
    assert_eq!(
        record.steps[6].result["undo"], true,
        "{:#}",
        record.steps[6].result
    );
    assert_eq!(record.steps[6].result["server"], "guts/blue");
    assert_eq!(record.steps[7].result["server"], "guts/green");
    assert_eq!(
        record.steps[8].result["current"],
        record.steps[1].result["previous"]
    );
    assert_eq!(bg.live(), "blue");
    assert_eq!(bg.balancer_serves(), "v1.0.0");
    assert_eq!(bg.haproxy_state("blue"), (2, 0));
    assert_eq!(
        bg.haproxy_state("green").1 & 1,
        1,
        "green left in the backend"
    );
    assert_eq!(bg.colour_serves("green").as_deref(), Some("v1.0.0"));
}
