//! The Ansible rolling upgrade (`examples/ansible/rolling-upgrade.yml`) run for real by
//! ansible-playbook on three demo nodes behind HAProxy (`examples/lib/fleet.sh`): a good
//! release reaches every node, one node at a time, with no failed request among those going
//! through HAProxy the whole time; a release that never gets healthy, one whose process dies
//! after its start (the wait, watching the pidfile, fails at once), one that fails its
//! checks once back in traffic, and one that cannot be fetched each stop the play at the first
//! node, which is put back as it was (rolled back only if it was switched, left out of
//! traffic if it was taken out), and the other two are never touched.

use crate::kit;

use kit::fleet::{Fleet, UPGRADE, statuses, tools};
use kit::load::{Load, Tally};
use kit::{Record, Step};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// How long a play may take: ansible-playbook starts a Python per task.
const PLAY_LIMIT: Duration = Duration::from_secs(150);
const RECORD: &str = "ugw/upgrade.json";
/// Requests a second through HAProxy while the play runs, each a unit of work of 20 ms.
const LOAD_PER_SECOND: u32 = 50;

#[test]
fn a_good_release_reaches_every_node_without_a_failed_request() {
    if !components() {
        return;
    }
    let fleet = Fleet::up(3);
    let (play, load) = play_under_load(&fleet, &["-e", "app_version=v2.0.0"]);
    assert_eq!(play.code, 0, "{}\n{}", play.stdout, play.stderr);
    assert_no_failed_request(&load);

    let records: Vec<Record> = (1..=3)
        .map(|k| fleet.record(k, RECORD).expect("a record on every node"))
        .collect();
    for (k, record) in (1..=3).zip(&records) {
        let host = format!("node{k}");
        assert!(record.ok, "{host}: {record:#?}");
        assert_eq!(
            tools(record),
            [&UPGRADE[..], &["ugw-migrate"]].concat(),
            "{host}"
        );
        assert!(record.steps.iter().all(|s| s.host == host), "{record:#?}");
        assert_eq!(record.steps[2].result["version"], "v2.0.0");
        assert_eq!(record.steps[9].result["phase"], "post");
        assert_eq!(fleet.current(k), "v2.0.0");
        assert!(fleet.answer(k).contains(r#""version":"v2.0.0""#), "{host}");
        assert_eq!(fleet.schema(k), ["items(id, name, note)"], "{host}");
        assert_eq!(fleet.haproxy_status(&format!("app/{host}")), "UP");
    }
    // One node at a time: each node's upgrade (baseline to verify) ends before the next
    // one's begins, and the post-deploy migrations start once the last node is verified.
    for pair in records.windows(2) {
        assert!(
            end(&pair[0].steps[8]) <= start(&pair[1].steps[0]),
            "{pair:#?}"
        );
    }
    for record in &records {
        assert!(start(&record.steps[9]) >= end(&records[2].steps[8]));
    }
    assert_changed_as_recorded(&play.stdout, &records);
}

#[test]
fn a_bad_release_stops_at_the_first_node_which_is_rolled_back_and_kept_out() {
    if !components() {
        return;
    }
    let fleet = Fleet::up(3);
    let untouched: Vec<i32> = (2..=3).map(|k| fleet.pid(k)).collect();
    let (play, load) = play_under_load(
        &fleet,
        &["-e", "app_version=v3.0.0", "-e", "health_timeout=5s"],
    );
    assert_eq!(play.code, 2, "{}\n{}", play.stdout, play.stderr);
    play.stdout_has("v3.0.0 failed and was rolled back");
    assert_no_failed_request(&load);

    // node1: v3 never got healthy; it was rolled back to v1 and its data restored, and it
    // stays drained.
    let record = fleet.record(1, RECORD).unwrap();
    kit::fleet::assert_rolled_back(&fleet, 1, &record);
    // v3's pre-deploy migrations are undone by the restore, and the post-deploy play never
    // ran (v1's table is still there).
    assert_eq!(
        fleet.schema(1),
        ["items(id, name)", "legacy_sessions(id, token)"]
    );

    // node2 and node3: no record, same process, same release, same schema, in traffic.
    for (k, pid) in (2..=3).zip(untouched) {
        assert!(fleet.record(k, RECORD).is_none(), "node{k} has a record");
        assert_eq!(fleet.pid(k), pid, "node{k} was restarted");
        assert_eq!(fleet.current(k), "v1.0.0");
        assert_eq!(
            fleet.schema(k),
            ["items(id, name)", "legacy_sessions(id, token)"]
        );
        assert_eq!(fleet.haproxy_status(&format!("app/node{k}")), "UP");
    }
}

/// A release whose process dies two seconds after its start (after ugw-swap's `--alive-for`,
/// so the swap counts the start): the wait watches the pidfile ugw-swap keeps and fails at
/// once with `process_exited`, long before `health_timeout`, and the node is rolled back.
#[test]
fn a_release_that_dies_after_its_start_fails_the_wait_at_once() {
    if !components() {
        return;
    }
    let fleet = Fleet::up(3);
    let untouched: Vec<i32> = (2..=3).map(|k| fleet.pid(k)).collect();
    // The inventory's app_service, but v3.0.0's start exits with 3 after two seconds.
    let dying = serde_json::json!({
        "health_timeout": "1m",
        "app_service": [
            "--start",
            "grep -q v3.0.0 bin/app && { sleep 2; exit 3; }; \
             exec bin/app --listen {{ app_url | urlsplit('netloc') }} \
             --db {{ (app_data ~ '/app.db') | quote }}",
            "--pidfile",
            "{{ node_dir }}/app.pid",
            "--log",
            "{{ node_dir }}/app.log",
        ],
    });
    let play = play(
        &fleet,
        &["-e", "app_version=v3.0.0", "-e", &dying.to_string()],
    );
    assert_eq!(play.code, 2, "{}\n{}", play.stdout, play.stderr);
    play.stdout_has("v3.0.0 failed and was rolled back");

    let record = fleet.record(1, RECORD).unwrap();
    assert_eq!(
        statuses(&record)[4..],
        [
            "ugw-drain ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
        ],
        "{record:#?}"
    );
    let wait = &record.steps[6];
    assert_eq!(wait.error_kind(), "process_exited", "{wait:#?}");
    assert!(wait.elapsed_ms < 30_000, "{wait:#?}");
    assert_eq!(record.steps[7].result["current"], "v1.0.0");
    assert_eq!(fleet.current(1), "v1.0.0");
    assert!(fleet.answer(1).contains(r#""version":"v1.0.0""#));
    for (k, pid) in (2..=3).zip(untouched) {
        assert!(fleet.record(k, RECORD).is_none(), "node{k} has a record");
        assert_eq!(fleet.pid(k), pid, "node{k} was restarted");
    }
}

#[test]
fn a_release_that_fails_its_checks_in_traffic_is_taken_out_again_and_rolled_back() {
    if !components() {
        return;
    }
    let fleet = Fleet::up(3);
    let untouched: Vec<i32> = (2..=3).map(|k| fleet.pid(k)).collect();
    let play = play(&fleet, &["-e", "app_version=v2.1.0"]);
    assert_eq!(play.code, 2, "{}\n{}", play.stdout, play.stderr);

    // v2.1.0 became healthy and went back into traffic; its checks failed (every other unit
    // of work is a 500), so it was drained again, rolled back and restored.
    let record = fleet.record(1, RECORD).unwrap();
    assert_eq!(
        statuses(&record)[4..],
        [
            "ugw-drain ok",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
            "ugw-drain ok",
            "ugw-verify failed",
            "ugw-drain ok",
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
        ],
        "{record:#?}"
    );
    assert_eq!(record.steps[8].error_kind(), "check_failed");
    assert_eq!(
        record.steps[8].result["failed"],
        serde_json::json!(["work"])
    );
    let again = &record.steps[9].result;
    assert_eq!(
        (&again["undo"], &again["state_before"]),
        (&false.into(), &"ready".into())
    );
    assert_eq!(record.steps[10].result["current"], "v1.0.0");
    assert_eq!(fleet.current(1), "v1.0.0");
    assert_eq!(fleet.settled_haproxy_status("app/node1", "DRAIN"), "DRAIN");
    for (k, pid) in (2..=3).zip(untouched) {
        assert!(fleet.record(k, RECORD).is_none(), "node{k} has a record");
        assert_eq!(fleet.pid(k), pid, "node{k} was restarted");
    }
}

#[test]
fn a_release_that_cannot_be_fetched_leaves_the_running_one_alone() {
    if !components() {
        return;
    }
    let fleet = Fleet::up(3);
    let pids: Vec<i32> = (1..=3).map(|k| fleet.pid(k)).collect();
    let play = play(&fleet, &["-e", "app_version=v9.9.9"]);
    assert_eq!(play.code, 2, "{}\n{}", play.stdout, play.stderr);

    // Nothing was swapped, so nothing is rolled back (a rollback here would go to the release
    // before the running one); the data is restored and the node was never out of traffic.
    let record = fleet.record(1, RECORD).unwrap();
    assert_eq!(
        statuses(&record)[2..],
        ["ugw-fetch failed", "ugw-backup ok", "ugw-wait-healthy ok",],
        "{record:#?}"
    );
    assert_eq!(fleet.current(1), "v1.0.0");
    assert_eq!(fleet.settled_haproxy_status("app/node1", "UP"), "UP");
    for (k, pid) in (1..=3).zip(pids) {
        assert_eq!(fleet.pid(k), pid, "node{k} was restarted");
    }
    assert!(fleet.record(2, RECORD).is_none());
}

// ---- running it ----

/// ansible-playbook, and what a fleet needs.
fn components() -> bool {
    kit::require("ansible-playbook") && kit::fleet::available()
}

/// The playbook with `extra` arguments, run against `fleet` while requests go through its
/// HAProxy (from before the play starts until it ended).
fn play_under_load(fleet: &Fleet, extra: &[&str]) -> (kit::Outcome, Tally) {
    let load = Load::start(
        &format!("{}/work?ms=20", fleet.env("LB_URL")),
        LOAD_PER_SECOND,
        PLAY_LIMIT,
    );
    let play = play(fleet, extra);
    let failures = load.failures();
    let tally = load.stop();
    eprintln!("load: {tally:?} {failures:?}");
    (play, tally)
}

/// The playbook with `extra` arguments, run against `fleet`.
fn play(fleet: &Fleet, extra: &[&str]) -> kit::Outcome {
    let examples = kit::fleet::examples().join("ansible");
    let mut cmd = Command::new("ansible-playbook");
    cmd.arg("-i")
        .arg(examples.join("inventory.yml"))
        .arg(examples.join("rolling-upgrade.yml"))
        .args(extra)
        .current_dir(fleet.root())
        .env("FLEET_DIR", fleet.root())
        .env("PATH", kit::path_with_bins())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", fleet.root().join("ansible-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", fleet.root().join("ansible-tmp"))
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::null());
    let play = kit::run_within(cmd, PLAY_LIMIT);
    eprintln!("the play took {:?}", play.elapsed);
    play
}

/// Every request through HAProxy got a 2xx, and there were enough of them to tell (the play
/// takes ten seconds at least).
#[track_caller]
fn assert_no_failed_request(load: &Tally) {
    assert!(
        load.sent >= 10 * u64::from(LOAD_PER_SECOND),
        "too few requests to tell: {load:?}"
    );
    assert_eq!(load.bad(), 0, "{load:?}");
}

// ---- reading what happened ----

/// When a step started and ended.
fn start(step: &Step) -> SystemTime {
    humantime::parse_rfc3339(&step.started).unwrap()
}

fn end(step: &Step) -> SystemTime {
    start(step) + Duration::from_millis(step.elapsed_ms)
}

/// Ansible says `changed` for a ugw task exactly when its step says so: per host, the
/// statuses of the tasks that ran a ugw tool, in order, match the record's steps.
fn assert_changed_as_recorded(output: &str, records: &[Record]) {
    for (k, record) in (1..=3).zip(records) {
        let host = format!("node{k}");
        let said: Vec<&str> = task_statuses(output, &host)
            .into_iter()
            .filter(|(task, _)| {
                !task.starts_with("The checks file") && !task.starts_with("A folder")
            })
            .map(|(_, status)| status)
            .collect();
        let recorded: Vec<&str> = record
            .steps
            .iter()
            .map(|s| if s.changed { "changed" } else { "ok" })
            .collect();
        assert_eq!(said, recorded, "{host}\n{output}");
    }
}

/// `(task, status)` for `host` from ansible-playbook's default output, in order.
fn task_statuses<'a>(output: &'a str, host: &str) -> Vec<(&'a str, &'a str)> {
    let mut found = Vec::new();
    let mut task = "";
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("TASK [") {
            task = rest.rsplit_once(']').map_or(rest, |(name, _)| name);
        } else if let Some((status, rest)) = line.split_once(": [")
            && rest.starts_with(&format!("{host}]"))
        {
            found.push((task, status));
        }
    }
    found
}
