//! The Guts node's upgrade: validators one at a time, the leader last (see the parent module
//! for the lab).

use super::*;

const VALIDATORS: [&str; 4] = ["validator1", "validator2", "validator3", "validator4"];

fn guts_lab() -> Option<Lab> {
    Lab::start("guts", &["python3", "setsid", "sha256sum"], &[])
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
