//! The five published upgrade runbooks redone with ugw (examples/runbooks/), each run for real
//! in its lab of demo nodes: the upgrade that goes through, and a bad release that must be
//! rolled back. The assertions read what an operator would look at afterwards: the exit code,
//! the records, the version each node answers, the files on disk, the database.

mod kit;

use kit::Record;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

// ---- the lab ----

/// A runbook's lab in a temp folder (built by its lab.sh), stopped when dropped, even when
/// the test fails.
struct Lab {
    dir: tempfile::TempDir,
    runbook: &'static str,
}

impl Lab {
    /// `examples/runbooks/RUNBOOK/lab.sh DIR` with `env`; `None` (skipped, or failed under
    /// CI=true) when a component the runbook needs is missing.
    fn start(runbook: &'static str, needs: &[&str], env: &[(&str, &str)]) -> Option<Lab> {
        if !needs.iter().all(|component| kit::require(component)) || !tools_built(runbook) {
            return None;
        }
        let lab = Lab {
            dir: tempfile::Builder::new().prefix("ugw-rb-").tempdir().unwrap(),
            runbook,
        };
        let lab_sh = examples().join(runbook).join("lab.sh");
        let out = lab.bash(&[lab_sh.to_str().unwrap(), lab.s()], env);
        assert_eq!(out.code, 0, "lab.sh failed:\n{}", out.stderr);
        Some(lab)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn s(&self) -> &str {
        self.path().to_str().unwrap()
    }

    /// Run the runbook's `script` with `args` and `env`, as an operator would (stdin closed).
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        let script = examples().join(self.runbook).join(script);
        let mut argv = vec![script.to_str().unwrap()];
        argv.extend_from_slice(args);
        let out = self.bash(&argv, env);
        eprintln!("{} said:\n{}", self.runbook, out.stderr);
        out
    }

    fn bash(&self, argv: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        let mut cmd = Command::new("bash");
        cmd.args(argv)
            .current_dir(self.path())
            .env("PATH", kit::path_with_bins())
            .env(
                "UGW_BIN_DIR",
                kit::bin("ugw-demo-app").parent().unwrap(),
            )
            .env_remove("UGW_HOST_ID")
            .stdin(Stdio::null());
        for (name, value) in env {
            cmd.env(name, value);
        }
        kit::run(cmd)
    }

    /// A record the runbook left, decoded strictly.
    fn record(&self, relative: &str) -> Record {
        let path = self.path().join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kit::parse_record(&text)
    }

    fn file(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.path().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn exists(&self, relative: &str) -> bool {
        self.path().join(relative).exists()
    }

    /// The port NODE listens on (LAB/NODE/port).
    fn port(&self, node: &str) -> u16 {
        String::from_utf8(self.file(&format!("{node}/port")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The pid of NODE's service (LAB/NODE/app.pid).
    fn pid(&self, node: &str) -> String {
        String::from_utf8(self.file(&format!("{node}/app.pid"))).unwrap()
    }

    /// The version NODE answers on /health/ready, read by hand (not by the tool under test).
    fn served(&self, node: &str) -> String {
        let (status, body) = get(self.port(node), "/health/ready", &[]);
        assert_eq!(status, 200, "{node}: {body}");
        version_in(&body)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let lib = examples().join("lib.sh");
        let _ = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && lab_stop "$2""#)
            .args(["lab_stop", lib.to_str().unwrap(), self.s()])
            .stdin(Stdio::null())
            .status();
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/runbooks")
}

/// The runbooks call ugw-drain and ugw-verify too: without them (a checkout from before they
/// landed) the test skips with a reason; under CI=true that is a failure.
fn tools_built(runbook: &str) -> bool {
    let dir = kit::bin("ugw-wait-healthy").parent().unwrap().to_path_buf();
    let missing: Vec<&str> = ["ugw-drain", "ugw-verify"]
        .into_iter()
        .filter(|tool| !dir.join(tool).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{missing:?} are required under CI=true"
    );
    eprintln!("SKIPPED: the {runbook} runbook needs {missing:?}, not built here");
    false
}

/// GET `path` on 127.0.0.1:`port` with `headers`: the status and the body.
fn get(port: u16, path: &str, headers: &[&str]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

fn version_in(body: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["version"].as_str().unwrap_or_default().to_string()
}

// ---- reading records ----

/// `tool status` of every step, in order.
fn steps(record: &Record) -> Vec<String> {
    record
        .steps
        .iter()
        .map(|s| format!("{} {}", s.tool, s.status))
        .collect()
}

/// When a step started and ended, in ms since the epoch (the record's UTC timestamps).
fn span(step: &kit::Step) -> (u64, u64) {
    let start = epoch_ms(&step.started);
    (start, start + step.elapsed_ms)
}

/// `2026-11-21T23:59:01.123Z` in ms since the epoch.
fn epoch_ms(stamp: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| -> i64 { stamp[range].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let ms = ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23);
    u64::try_from(ms).unwrap()
}

// ---- Guts: validators one at a time, the leader last, a binary under systemd ----

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
        let record = lab.record(&format!("state/records/{v}.json"));
        assert!(record.ok, "{v}: {record:#?}");
        assert_eq!(
            steps(&record),
            ["ugw-backup ok", "ugw-fetch ok", "ugw-swap ok", "ugw-wait-healthy ok"],
            "{v}"
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
    assert_eq!(order, ["validator1", "validator2", "validator4", "validator3"]);
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

    let record = lab.record("state/records/validator1.json");
    assert!(!record.ok);
    assert_eq!(
        steps(&record),
        [
            "ugw-backup ok",
            "ugw-fetch ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok"
        ]
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
}
