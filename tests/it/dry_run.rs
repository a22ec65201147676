//! `--dry-run` through a whole pipeline (issue 21 item 12; ugw(7): a dry-run step carries what
//! it would have produced, and later tools dry-run on it). The README's pipeline and the demo's
//! run with `--dry-run` on every tool against a demo node on v1.0.0 behind HAProxy, upgrading
//! to v2.0.0: every tool exits 0 with a dry-run step, and nothing on disk, in the database or in
//! HAProxy changes. A dry-run step never lets a real run act on it.

use crate::kit;

use kit::fleet::{self, Fleet};
use kit::{Record, s};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The demo's checks (examples/demo.sh), against node 1.
fn write_smoke(fleet: &Fleet, path: &Path) {
    let app = fleet.node_url(1);
    let checks = serde_json::json!({"checks": [
        {"name": "ready", "type": "http", "url": format!("{app}/health/ready"),
         "expect": [".status == \"ok\""]},
        {"name": "create", "type": "http", "method": "POST", "url": format!("{app}/items"),
         "body": {"name": "smoke"}, "status": 201, "capture": {"item": ".id"}},
        {"name": "read", "type": "http", "url": format!("{app}/items/${{capture:item}}"),
         "expect": [".name == \"smoke\""]},
        {"name": "delete", "type": "http", "method": "DELETE",
         "url": format!("{app}/items/${{capture:item}}"), "status": "2xx", "after": ["read"],
         "always": true},
        {"name": "work", "type": "http", "url": format!("{app}/work?ms=10"), "samples": 100,
         "p95": "250ms"},
        {"name": "memory", "type": "metrics", "url": format!("{app}/metrics"), "after": ["work"],
         "measure": ["memory"], "assert": ["process_resident_memory_bytes <= 256MiB"]}
    ]});
    std::fs::write(path, checks.to_string()).unwrap();
}

/// Every path under `dir` with what it is: a file's size, mode and digest, a link's target,
/// a folder's mode. The service's own log is left out (it logs the balancer's health checks).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.extension().is_some_and(|e| e == "log") || name.ends_with("-shm") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                todo.push(path.clone());
                format!("dir {:o}", meta.mode())
            } else {
                let bytes = std::fs::read(&path).unwrap();
                format!(
                    "file {:o} {} {}",
                    meta.mode(),
                    bytes.len(),
                    kit::sha256(&bytes)
                )
            };
            found.insert(name, what);
        }
    }
    found
}

/// What a dry run must leave as it was: node 1's files (its releases, staging, data, the
/// database file), its database's tables and ledger, the process serving, and HAProxy's view.
#[derive(Debug, PartialEq, Eq)]
struct NodeState {
    tree: BTreeMap<String, String>,
    schema: Vec<String>,
    ledger: Vec<String>,
    current: String,
    pid: i32,
    haproxy: String,
}

fn node_state(fleet: &Fleet) -> NodeState {
    let db = rusqlite::Connection::open(fleet.node(1).join("data/app.db")).unwrap();
    let mut ledger_tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ugw%'")
        .unwrap();
    let ledger = ledger_tables
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .map(|table| {
            let rows: i64 = db
                .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                    r.get(0)
                })
                .unwrap();
            format!("{table}: {rows} rows")
        })
        .collect();
    NodeState {
        tree: tree(&fleet.node(1)),
        schema: fleet.schema(1),
        ledger,
        current: fleet.current(1),
        pid: fleet.pid(1),
        haproxy: fleet.settled_haproxy_status("app/node1", "UP"),
    }
}

/// Run `pipeline` (bash, with fleet.env's variables, `$N` node 1's folder, `$START` the command
/// its service starts with, `$SMOKE` the checks) in `work`; the record it wrote to `$OUT`, and
/// its stderr.
fn run_pipeline(fleet: &Fleet, work: &Path, pipeline: &str) -> (Record, String) {
    let out = work.join("record.json");
    let script = format!(
        "set -euo pipefail\nsource {env}\nN={node}\nSTART=\"{start}\"\nSMOKE={smoke}\nOUT={out}\n{pipeline}",
        env = s(&fleet.root().join("fleet.env")),
        node = s(&fleet.node(1)),
        start = fleet.start_command(1),
        smoke = s(&work.join("smoke.json")),
        out = s(&out),
    );
    let outcome = kit::bash(&script, work);
    outcome.succeeds();
    let record = kit::parse_record(&std::fs::read_to_string(&out).unwrap());
    (record, outcome.stderr)
}

/// Every step of `record` is an ok dry run, of these tools in this order.
fn all_dry_and_ok(record: &Record, tools: &[&str], stderr: &str) {
    assert!(record.ok, "{}", stderr);
    assert_eq!(fleet::tools(record), tools, "{stderr}");
    for step in &record.steps {
        assert_eq!(
            (step.status.as_str(), step.exit, step.dry_run, step.changed),
            ("ok", 0, true, false),
            "{}: {:?}\n{stderr}",
            step.tool,
            step.error
        );
    }
}

fn result_of<'a>(record: &'a Record, tool: &str) -> &'a serde_json::Value {
    &record.steps.iter().find(|s| s.tool == tool).unwrap().result
}

/// The README's pipeline ("In a pipeline"), each tool with --dry-run, fetching v2.0.0 (its
/// restart through systemd is never run: a dry run restarts nothing).
const README_PIPELINE: &str = r#"
ugw-backup create --dry-run --in none --path "$N/data/files" --db "sqlite://$N/data/app.db" --out "$N/backups" \
 | ugw-fetch --dry-run --url "$RELEASES_URL/app-v2.0.0-linux-amd64.tar.gz" --sha256-url "$RELEASES_URL/SHA256SUMS" \
             --dest "$N/staging" --extract \
 | ugw-migrate up --dry-run --db "sqlite://$N/data/app.db" \
 | ugw-drain --dry-run --haproxy "$HAPROXY_SOCKET" --server app/node1 \
 | ugw-swap --dry-run --root "$N/srv" --restart 'systemctl restart app' \
 | ugw-wait-healthy --dry-run --url "$NODE1_URL/health/ready" --expect-version \
 | ugw-drain --dry-run --undo --haproxy "$HAPROXY_SOCKET" --server app/node1 \
 | ugw-verify --dry-run --checks "$SMOKE" \
 >"$OUT"
"#;

/// The demo's upgrade to v2.0.0 (examples/demo.sh), each tool with --dry-run; ugw-swap is the
/// service manager, as in the demo (`--start`, with the command the fleet started node 1 with).
const DEMO_PIPELINE: &str = r#"
ugw-verify baseline --dry-run --in none --checks "$SMOKE" \
  | ugw-backup create --dry-run --path "$N/data/files" --db "sqlite://$N/data/app.db" --out "$N/backups" \
    --name app-before-v2.0.0 --app-version v1.0.0 \
  | ugw-backup verify --dry-run \
  | ugw-fetch --dry-run --url "$RELEASES_URL/app-v2.0.0-linux-amd64.tar.gz" --sha256-url "$RELEASES_URL/SHA256SUMS" \
      --dest "$N/staging" --extract \
  | ugw-migrate up --dry-run --db "sqlite://$N/data/app.db" \
  | ugw-drain --dry-run --flag-file "$N/drain.flag" --lb-grace 300ms \
      --inflight-metric "$NODE1_URL/metrics#http_requests_in_flight" \
  | ugw-swap --dry-run --root "$N/srv" --start "$START" --pidfile "$N/app.pid" --log "$N/app.log" \
  | ugw-wait-healthy --dry-run --url "$NODE1_URL/health/ready" --pidfile "$N/app.pid" --expect-version --timeout 30s \
  | ugw-drain --dry-run --undo \
  | ugw-verify --dry-run --checks "$SMOKE" --compare --latency-floor 25ms --junit "$N/verify-junit.xml" \
  >"$OUT"
"#;

#[test]
fn the_readme_and_demo_pipelines_dry_run_end_to_end_and_change_nothing() {
    if !fleet::available() {
        return;
    }
    let fleet = Fleet::up(1);
    let work = tempfile::tempdir().unwrap();
    write_smoke(&fleet, &work.path().join("smoke.json"));
    let before = node_state(&fleet);
    let artifact = s(&fleet.node(1).join("staging/app-v2.0.0-linux-amd64")).to_string();

    let (record, stderr) = run_pipeline(&fleet, work.path(), README_PIPELINE);
    all_dry_and_ok(
        &record,
        &[
            "ugw-backup",
            "ugw-fetch",
            "ugw-migrate",
            "ugw-drain",
            "ugw-swap",
            "ugw-wait-healthy",
            "ugw-drain",
            "ugw-verify",
        ],
        &stderr,
    );
    // What each step says it would do, from what the dry-run fetch would have staged.
    let fetched = result_of(&record, "ugw-fetch");
    assert_eq!(fetched["path"], artifact.as_str());
    assert_eq!(fetched["version"], "v2.0.0");
    assert_eq!(fetched["fetched"], false);
    assert_eq!(
        fetched["sha256"].as_str().map(str::len),
        Some(64),
        "from SHA256SUMS"
    );
    let migrated = result_of(&record, "ugw-migrate");
    assert_eq!(migrated["dir"], format!("{artifact}/migrations").as_str());
    assert_eq!(migrated["not_fetched"], true);
    assert!(
        stderr.contains(&format!(
            "would apply the migrations in {artifact}/migrations/ (not fetched: dry-run"
        )),
        "{stderr}"
    );
    let swapped = result_of(&record, "ugw-swap");
    assert_eq!(
        (&swapped["previous"], &swapped["current"]),
        (&"v1.0.0".into(), &"v2.0.0".into())
    );
    assert!(
        swapped["would"]
            .as_str()
            .unwrap()
            .contains("switch current to releases/v2.0.0, then restart (not fetched: dry-run)"),
        "{swapped}"
    );
    assert_eq!(
        result_of(&record, "ugw-wait-healthy")["expect_version"],
        "v2.0.0",
        "the version the dry-run fetch would have staged"
    );
    assert_eq!(
        node_state(&fleet),
        before,
        "the README's pipeline changed something"
    );

    let (record, stderr) = run_pipeline(&fleet, work.path(), DEMO_PIPELINE);
    all_dry_and_ok(
        &record,
        &[
            "ugw-verify",
            "ugw-backup",
            "ugw-backup",
            "ugw-fetch",
            "ugw-migrate",
            "ugw-drain",
            "ugw-swap",
            "ugw-wait-healthy",
            "ugw-drain",
            "ugw-verify",
        ],
        &stderr,
    );
    let archive = s(&fleet.node(1).join("backups/app-before-v2.0.0.tar.gz")).to_string();
    assert_eq!(record.steps[2].result["would_verify"], archive.as_str());
    assert_eq!(record.steps[8].result["undo"], true);
    assert_eq!(
        record.steps[8].result["flag_file"],
        s(&fleet.node(1).join("drain.flag"))
    );
    assert_eq!(
        record.steps[9].result["compare"], true,
        "with the dry-run baseline"
    );
    assert_eq!(
        node_state(&fleet),
        before,
        "the demo's pipeline changed something"
    );
    assert!(!fleet.node(1).join("verify-junit.xml").exists());
}

#[test]
fn a_real_run_never_acts_on_a_dry_run_step() {
    if !fleet::available() {
        return;
    }
    let fleet = Fleet::up(1);
    let work = tempfile::tempdir().unwrap();
    write_smoke(&fleet, &work.path().join("smoke.json"));
    let before = node_state(&fleet);
    // Dry-run steps of backup, fetch and drain; then each tool that would read one, for real.
    run_pipeline(
        &fleet,
        work.path(),
        r#"
ugw-backup create --dry-run --in none --path "$N/data/files" --db "sqlite://$N/data/app.db" --out "$N/backups" \
 | ugw-fetch --dry-run --url "$RELEASES_URL/app-v2.0.0-linux-amd64.tar.gz" --sha256-url "$RELEASES_URL/SHA256SUMS" \
             --dest "$N/staging" --extract \
 | ugw-drain --dry-run --haproxy "$HAPROXY_SOCKET" --server app/node1 >"$OUT"
"#,
    );
    let dry = std::fs::read_to_string(work.path().join("record.json")).unwrap();
    let node = fleet.node(1);
    let db = format!("sqlite://{}", s(&node.join("data/app.db")));
    let real: [(&str, Vec<String>); 4] = [
        (
            "ugw-swap",
            [
                &["--root".into(), s(&node.join("srv")).into()][..],
                &fleet.service_flags(1),
            ]
            .concat(),
        ),
        ("ugw-migrate", vec!["up".into(), "--db".into(), db]),
        ("ugw-backup", vec!["verify".into()]),
        ("ugw-drain", vec!["--undo".into()]),
    ];
    for (tool, args) in real {
        let mut cmd = kit::tool(tool);
        cmd.args(&args);
        let out = kit::with_stdin(cmd, &dry);
        out.assert_code(2);
        let step = out.last_step();
        assert_eq!(
            (step.error_kind(), step.dry_run),
            ("usage", false),
            "{tool}"
        );
    }
    assert_eq!(
        node_state(&fleet),
        before,
        "a real run acted on a dry-run step"
    );
}
