//! `make demo` (examples/demo.sh) run as an operator runs it: a real upgrade of the demo
//! service to v2 through one pipeline (baseline, backup, fetch, migrate, drain, swap, wait,
//! undrain, compare), a v3 that fails its health check and is rolled back and
//! restored, and nothing left behind (no process, no temp folder).

mod kit;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo must finish well under the two minutes promised, on a loaded machine too.
const DEMO_LIMIT: Duration = Duration::from_secs(110);

#[test]
fn the_demo_upgrades_then_rolls_a_failed_release_back() {
    if !kit::require("python3") || !kit::require("setsid") || !kit::require("sha256sum") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let said = run_demo(tmp.path());

    let summary = |record: &str| -> Vec<&str> {
        said.lines()
            .skip_while(|line| !line.starts_with(record))
            .take_while(|line| line.starts_with(record) || line.starts_with("  "))
            .collect()
    };
    let has = |lines: &[&str], tool: &str, status: &str| {
        lines.iter().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.first() == Some(&tool) && words.get(1) == Some(&status)
        })
    };

    // v2 went in through the whole pipeline and answered its version.
    let v2 = summary("v2.json:");
    assert!(v2[0].starts_with("v2.json: ok, 11 steps"), "{v2:#?}");
    assert!(
        v2.iter()
            .any(|line| line.ends_with(r#"healthy: {"status":"ok","version":"v2.0.0"}"#)),
        "{v2:#?}"
    );
    assert!(
        v2.iter()
            .any(|line| line.ends_with("applied (pre): 2_add_items_note")),
        "{v2:#?}"
    );
    for tool in [
        "ugw-backup",
        "ugw-fetch",
        "ugw-migrate",
        "ugw-drain",
        "ugw-swap",
        "ugw-wait-healthy",
        "ugw-verify",
    ] {
        assert!(has(&v2, tool, "ok"), "{tool} in {v2:#?}");
    }
    // Drained before the swap, back after the health check; the client's slow request, in
    // flight when the drain began, was not cut off by the restart.
    let position = |text: &str| {
        v2.iter()
            .position(|line| line.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not in {v2:#?}"))
    };
    assert!(position("out of traffic (flag_file)") < position("current -> v2.0.0"));
    assert!(position("current -> v2.0.0") < position("back in traffic (flag_file"));
    assert!(position("baseline: 2 checks passed") < position("backed up to"));
    assert!(
        said.contains("the request in flight during the drain got 200\n"),
        "{said}"
    );
    // A baseline before the upgrade, and a comparison with it after.
    assert!(
        v2.iter()
            .any(|line| line.contains("ugw-verify") && line.ends_with("baseline: 2 checks passed")),
        "{v2:#?}"
    );
    assert!(
        v2.iter().any(|line| line
            .contains("verify: 6 checks passed; compared with the baseline: work p95_ms")
            && line.contains("memory memory_bytes")),
        "{v2:#?}"
    );
    // v3 failed at its health check; the rollback, the restore and the health check on v2 ran.
    let v3 = summary("v3.json:");
    assert!(v3[0].starts_with("v3.json: FAILED, 12 steps"), "{v3:#?}");
    let wait_failed = v3
        .iter()
        .position(|line| {
            line.trim_start().starts_with("ugw-wait-healthy") && line.contains("failed")
        })
        .unwrap_or_else(|| panic!("no failed wait in {v3:#?}"));
    let after: Vec<&str> = v3[wait_failed + 1..].to_vec();
    assert_eq!(
        after
            .iter()
            .map(|line| line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "))
            .collect::<Vec<_>>(),
        [
            "ugw-drain skipped",
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
            "ugw-drain ok"
        ],
        "{v3:#?}"
    );
    // The database: v2's column is there, v1's table gone (post-deploy), v3's column gone
    // (the restore); and what answers at the end is v2.
    assert!(
        said.contains("schema now: items(id, name, note)\n"),
        "{said}"
    );
    assert!(!said.contains("legacy_sessions("), "{said}");
    assert!(
        said.contains(r#"live: releases/v2.0.0 answers {"status":"ok","version":"v2.0.0"}"#),
        "{said}"
    );

    assert_nothing_left(&said, tmp.path());
}

/// The demo run as `make demo` runs it, with its temp folder under `tmp`: what it said.
fn run_demo(tmp: &Path) -> String {
    let bins = kit::bin("ugw-demo-app").parent().unwrap().to_path_buf();
    let mut cmd = Command::new("bash");
    cmd.arg("examples/demo.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("UGW_BIN_DIR", &bins)
        .env("TMPDIR", tmp)
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = kit::wait_bounded(cmd.spawn().unwrap(), DEMO_LIMIT);
    let took = started.elapsed();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{said}");
    eprintln!("the demo took {took:?}:\n{said}");
    said
}

/// Every process the demo named (by "pid N") has stopped, and its temp folder is gone.
fn assert_nothing_left(said: &str, tmp: &Path) {
    let pids: Vec<i32> = said
        .split("pid ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(pids.len() >= 4, "{pids:?} in {said}");
    for pid in pids {
        assert!(
            kit::gone(pid, Duration::from_secs(2)),
            "pid {pid} still runs"
        );
    }
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}
