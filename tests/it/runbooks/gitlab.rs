//! GitLab's zero-downtime upgrade: Rails nodes behind nginx, an Ansible play, post-deployment
//! migrations after every node (see the parent module for the lab).

use super::*;

const RAILS: [&str; 3] = ["rails1", "rails2", "rails3"];

fn gitlab_upgrade(lab: &Lab, version: &str) -> kit::Outcome {
    let inventory = format!("{}/inventory.yml", lab.s());
    let playbook = lab.script("zero-downtime-upgrade.yml");
    let temp = format!("{}/ansible-tmp", lab.s());
    let out = lab.program(
        "ansible-playbook",
        &[
            "-i",
            &inventory,
            &playbook,
            "-e",
            &format!("gitlab_version={version}"),
        ],
        &[
            ("ANSIBLE_LOCAL_TEMP", &temp),
            ("ANSIBLE_REMOTE_TEMP", &temp),
            ("ANSIBLE_NOCOLOR", "1"),
            ("ANSIBLE_RETRY_FILES_ENABLED", "0"),
        ],
    );
    eprintln!("ansible-playbook said:\n{}{}", out.stdout, out.stderr);
    out
}

fn gitlab_lab(test: &str) -> Option<(Lab, Database)> {
    if !kit::require("ansible-playbook") || !kit::require("nginx") {
        return None;
    }
    pg_lab("gitlab", test)
}

/// The version a Rails node answers through its nginx (the load balancer's view).
fn through_nginx(lab: &Lab, node: &str) -> (u16, String) {
    let port = String::from_utf8(lab.file(&format!("{node}/nginx_port"))).unwrap();
    get(port.trim().parse().unwrap(), "/-/readiness", &[])
}

#[test]
fn gitlab_rails_nodes_one_at_a_time_and_post_migrations_after_all_of_them() {
    if !HaProxy::available() {
        return;
    }
    let Some((lab, db)) = gitlab_lab("rb_gitlab_ok") else {
        return;
    };
    let nginx_before: Vec<String> = RAILS
        .iter()
        .map(|n| String::from_utf8(lab.file(&format!("{n}/nginx.pid"))).unwrap())
        .collect();
    // The external load balancer the procedure requires, checking /-/readiness, with load
    // through it all along. nginx closes its port at once on QUIT, before any check can see
    // it: the balancer retries a refused connection on another node.
    let servers: Vec<Server> = RAILS
        .iter()
        .map(|n| {
            let port = String::from_utf8(lab.file(&format!("{n}/nginx_port"))).unwrap();
            Server::new(n, &format!("127.0.0.1:{}", port.trim()), true)
        })
        .collect();
    let options = haproxy::Options {
        check_path: "/-/readiness".into(),
        backend_extra: vec!["retries 3".into(), "option redispatch".into()],
        ..haproxy::Options::default()
    };
    let balancer = HaProxy::start_with(&servers, &options);
    for n in RAILS {
        assert!(
            balancer.wait_status(n, "UP", Duration::from_secs(10)),
            "{n} never UP"
        );
    }
    let load = Load::start(
        &format!("{}/work?ms=20", balancer.url()),
        40,
        Duration::from_secs(120),
    );
    let out = gitlab_upgrade(&lab, "16.2.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 0);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");
    assert!(tally.ok >= 40, "too little load to tell: {tally:?}");

    let mut spans = Vec::new();
    for (node, old_nginx) in RAILS.iter().zip(&nginx_before) {
        let mut expected = vec!["ugw-drain ok", "ugw-fetch ok"];
        if *node == "rails1" {
            expected.push("ugw-migrate ok");
        }
        expected.extend(["ugw-swap ok", "ugw-wait-healthy ok", "ugw-wait-healthy ok"]);
        if *node == "rails1" {
            expected.push("ugw-migrate ok");
        }
        let record = record_with(
            &lab,
            &format!("{node}/upgrade-16.2.0.json"),
            true,
            &expected,
        );
        assert!(record.steps.iter().all(|s| s.host == *node), "{record:#?}");
        let drained = &record.steps[0].result;
        assert_eq!(drained["method"], "signal", "{drained:#}");
        assert_eq!(drained["pid"].to_string(), old_nginx.trim(), "{drained:#}");
        // nginx was drained (its old master is gone) and started again; the node answers the
        // new release through it.
        assert!(kit::gone(old_nginx.trim().parse().unwrap(), Duration::ZERO));
        let (status, body) = through_nginx(&lab, node);
        assert_eq!(
            (status, version_in(&body).as_str()),
            (200, "16.2.0"),
            "{node}"
        );
        spans.push((span(&record.steps[0]).0, span(&record.steps[4]).1));
        if *node == "rails1" {
            assert_eq!(record.steps[2].result["phase"], "pre");
            assert_eq!(record.steps[6].result["phase"], "post");
            spans.push((span(&record.steps[6]).0, span(&record.steps[6]).1));
        }
    }
    // One node at a time, the deploy node first, and the post-deployment migrations (kept
    // second in `spans`) only after the last node was ready.
    let post = spans.remove(1);
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "nodes overlap: {spans:?}");
    }
    assert!(
        post.0 >= spans[2].1,
        "post migrations before rails3 was done"
    );
    assert_eq!(pg_columns(&db, "items"), ["id", "name", "note"]);
    assert!(pg_columns(&db, "legacy_sessions").is_empty());
    stop_and_check(lab);
}

#[test]
fn gitlab_a_failed_deploy_node_is_rolled_back_left_drained_and_stops_the_play() {
    let Some((lab, db)) = gitlab_lab("rb_gitlab_bad") else {
        return;
    };
    let pids: Vec<String> = RAILS
        .iter()
        .map(|n| String::from_utf8(lab.file(&format!("{n}/nginx.pid"))).unwrap())
        .collect();
    // A release that skips a minor one is refused before anything changes.
    let out = gitlab_upgrade(&lab, "16.3.0");
    assert_eq!(out.code, 2, "ansible-playbook's code for a failed host");
    assert!(
        out.stdout
            .contains("16.1.0 to 16.3.0 skips a minor release")
    );
    assert!(!lab.exists("rails1/upgrade-16.3.0.json"));
    assert!(runs(&lab, "rails1/nginx.pid"));

    let out = gitlab_upgrade(&lab, "16.2.1");
    assert_eq!(out.code, 2, "ansible-playbook's code for a failed host");

    record_with(
        &lab,
        "rails1/upgrade-16.2.1.json",
        false,
        &[
            "ugw-drain ok",
            "ugw-fetch ok",
            "ugw-migrate ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
        ],
    );
    // rails1 runs 16.1.0 again, behind an nginx that stays stopped: out of traffic.
    assert_eq!(lab.served("rails1"), "16.1.0");
    assert!(kit::gone(pids[0].trim().parse().unwrap(), Duration::ZERO));
    assert!(!runs(&lab, "rails1/nginx.pid"));
    assert_eq!(through_nginx(&lab, "rails1").0, 0, "nothing listens");
    // The other nodes were never touched, and the post-deployment migrations never ran.
    for (node, pid) in RAILS.iter().zip(&pids).skip(1) {
        assert!(
            !lab.exists(&format!("{node}/upgrade-16.2.1.json")),
            "{node}"
        );
        assert_eq!(
            &String::from_utf8(lab.file(&format!("{node}/nginx.pid"))).unwrap(),
            pid
        );
        let (status, body) = through_nginx(&lab, node);
        assert_eq!(
            (status, version_in(&body).as_str()),
            (200, "16.1.0"),
            "{node}"
        );
    }
    assert_eq!(pg_columns(&db, "legacy_sessions"), ["id", "token"]);
}

/// Puma has ugw-swap --start as its service manager and the waits on it watch its pidfile
/// (`puma_watch`): a puma that dies after its start (past --alive-for) fails the wait at once,
/// not at its 2m timeout; the node goes back to its old release, stays drained, and the play
/// stops there.
#[test]
fn gitlab_a_puma_that_dies_after_its_start_fails_the_wait_at_once_and_is_rolled_back() {
    let Some((lab, _db)) = gitlab_lab("rb_gitlab_dies") else {
        return;
    };
    let out = gitlab_upgrade(&lab, "16.2.2");
    assert_eq!(out.code, 2, "ansible-playbook's code for a failed host");

    let record = record_with(
        &lab,
        "rails1/upgrade-16.2.2.json",
        false,
        &[
            "ugw-drain ok",
            "ugw-fetch ok",
            "ugw-migrate ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
        ],
    );
    let wait = &record.steps[4];
    assert_eq!(wait.error_kind(), "process_exited", "{wait:#?}");
    assert!(wait.elapsed_ms < 30_000, "{wait:#?}");
    assert_eq!(lab.served("rails1"), "16.1.0");
    assert!(!runs(&lab, "rails1/nginx.pid"));
    for node in RAILS.iter().skip(1) {
        assert!(
            !lab.exists(&format!("{node}/upgrade-16.2.2.json")),
            "{node}"
        );
        assert_eq!(lab.served(node), "16.1.0", "{node}");
    }
    stop_and_check(lab);
}
