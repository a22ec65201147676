//! The demo fleet of the Ansible and GitLab CI examples (`examples/lib/fleet.sh`): demo nodes on
//! `v1.0.0` behind HAProxy, the demo releases served on loopback, in a temp dir; stopped
//! when dropped, even when the test fails. Plus what the tests read back from it: each node's
//! record, version and database, and HAProxy's view of each server.

use super::{Record, parse_record};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether a fleet can run here: HAProxy and setsid are installed (`require`: skip locally,
/// fail under CI=true).
pub fn available() -> bool {
    super::require("haproxy") && super::require("setsid")
}

pub struct Fleet {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Fleet {
    /// `nodes` demo nodes on `v1.0.0` behind HAProxy, every one `UP` there.
    pub fn up(nodes: usize) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let mut fleet = Fleet {
            dir,
            env: HashMap::new(),
        };
        let out = Fleet::script(&["up", &fleet.root().to_string_lossy(), &nodes.to_string()]);
        assert_eq!(out.code, 0, "fleet.sh up: {}{}", out.stdout, out.stderr);
        let env = std::fs::read_to_string(fleet.root().join("fleet.env")).unwrap();
        fleet.env = env
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        fleet
    }

    fn script(args: &[&str]) -> super::Outcome {
        let mut cmd = Command::new("bash");
        cmd.arg(examples().join("lib/fleet.sh"))
            .args(args)
            .env("UGW_BIN_DIR", super::bin("ugw-demo-app").parent().unwrap())
            .env_remove("UGW_HOST_ID")
            .stdin(Stdio::null());
        super::run(cmd)
    }

    /// The folder everything lives in (`FLEET_DIR` for the examples).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A value of `fleet.env`: `LB_URL`, `RELEASES_URL`, `HAPROXY_SOCKET`, `NODE1_URL`...
    pub fn env(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in fleet.env"))
    }

    /// Node `k`'s folder (1-based).
    pub fn node(&self, k: usize) -> PathBuf {
        self.root().join(format!("node{k}"))
    }

    pub fn node_url(&self, k: usize) -> &str {
        self.env(&format!("NODE{k}_URL"))
    }

    /// The pid of the demo service node `k` runs now: the first line of the pidfile
    /// `ugw-swap --start` wrote (its second says which process that is).
    pub fn pid(&self, k: usize) -> i32 {
        let text = std::fs::read_to_string(self.pidfile(k)).unwrap();
        let first = text.lines().next().unwrap_or_default();
        first
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("pidfile of node{k}: {e}: {text:?}"))
    }

    /// The flags that make `ugw-swap` node `k`'s service manager, as `fleet.sh` installed it
    /// and the examples upgrade it: `--start` (the demo service on the node's port and
    /// database, run in the release's folder), `--pidfile`, `--log`.
    pub fn service_flags(&self, k: usize) -> [String; 6] {
        [
            "--start".into(),
            self.start_command(k),
            "--pidfile".into(),
            super::s(&self.pidfile(k)).into(),
            "--log".into(),
            super::s(&self.node(k).join("app.log")).into(),
        ]
    }

    /// The command `ugw-swap --start` runs node `k`'s service with (`sh -c`).
    pub fn start_command(&self, k: usize) -> String {
        let listen = self.node_url(k).trim_start_matches("http://");
        let db = self.node(k).join("data/app.db");
        let db = super::s(&db);
        assert!(!db.contains('\''), "a quote in {db}");
        format!("exec bin/app --listen {listen} --db '{db}'")
    }

    /// Where `ugw-swap --start` keeps the pid of node `k`'s service.
    pub fn pidfile(&self, k: usize) -> PathBuf {
        self.node(k).join("app.pid")
    }

    /// The release node `k`'s `current` link names.
    pub fn current(&self, k: usize) -> String {
        let link = std::fs::read_link(self.node(k).join("srv/current")).unwrap();
        link.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// What node `k` answers on /health/ready (`ugw-wait-healthy --once`).
    pub fn answer(&self, k: usize) -> String {
        let url = format!("{}/health/ready", self.node_url(k));
        let out = super::wait_healthy(&["--once", "--url", &url]);
        let result = out.wait_result();
        result.targets[0].body_excerpt.clone().unwrap_or_default()
    }

    /// The columns of each table in node `k`'s database, `table(col, ...)`, sorted.
    pub fn schema(&self, k: usize) -> Vec<String> {
        let db = rusqlite::Connection::open(self.node(k).join("data/app.db")).unwrap();
        let mut tables = db
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'ugw%' \
                 AND name NOT LIKE 'sqlite%' ORDER BY name",
            )
            .unwrap();
        let names: Vec<String> = tables
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        names
            .into_iter()
            .map(|table| {
                let mut columns = db
                    .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .unwrap();
                let columns: Vec<String> = columns
                    .query_map([], |row| row.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                format!("{table}({})", columns.join(", "))
            })
            .collect()
    }

    /// The record file at `path` under node `k`, if there is one.
    pub fn record(&self, k: usize, path: &str) -> Option<Record> {
        let text = std::fs::read_to_string(self.node(k).join(path)).ok()?;
        Some(parse_record(&text))
    }

    /// HAProxy's status of `backend/server` (`UP`, `DOWN`, `DRAIN`, `MAINT`...), from `show stat` on
    /// its admin socket.
    pub fn haproxy_status(&self, server: &str) -> String {
        let (backend, name) = server.split_once('/').unwrap();
        let stat = haproxy_command(Path::new(self.env("HAPROXY_SOCKET")), "show stat");
        let fields = stat
            .lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|fields| fields.len() > 17 && fields[0] == backend && fields[1] == name)
            .unwrap_or_else(|| panic!("no {server} in\n{stat}"));
        fields[17].to_string()
    }

    /// Wait (at most 5 s) until HAProxy's status of `backend/server` is `status`: its health
    /// checks need a few rounds to see a node that just restarted. The status then.
    pub fn settled_haproxy_status(&self, server: &str, status: &str) -> String {
        super::eventually(Duration::from_secs(5), || {
            self.haproxy_status(server) == status
        });
        self.haproxy_status(server)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let out = Fleet::script(&["down", &self.root().to_string_lossy()]);
        if out.code != 0 {
            eprintln!("fleet.sh down: {}", out.stderr);
        }
    }
}

/// One command on HAProxy's runtime API; its answer.
pub fn haproxy_command(socket: &Path, command: &str) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The steps of one node's upgrade in both examples, from the baseline to the verification,
/// by tool.
pub const UPGRADE: [&str; 9] = [
    "ugw-verify",
    "ugw-backup",
    "ugw-fetch",
    "ugw-migrate",
    "ugw-drain",
    "ugw-swap",
    "ugw-wait-healthy",
    "ugw-drain",
    "ugw-verify",
];

/// Each step of `record` as `TOOL STATUS`.
pub fn statuses(record: &Record) -> Vec<String> {
    record
        .steps
        .iter()
        .map(|s| format!("{} {}", s.tool, s.status))
        .collect()
}

/// Each step's tool.
pub fn tools(record: &Record) -> Vec<&str> {
    record.steps.iter().map(|s| s.tool.as_str()).collect()
}

/// Node `k` of `fleet` went through a failed upgrade from v1.0.0 and its rollback: after the
/// baseline, the backup, the fetch and the migrations, it was drained and swapped, the new
/// release never became healthy, and it was switched back, restored and waited for; it runs
/// v1.0.0 again and stays out of traffic (no undo of the drain).
#[track_caller]
pub fn assert_rolled_back(fleet: &Fleet, k: usize, record: &Record) {
    assert!(!record.ok);
    assert_eq!(
        statuses(record)[4..],
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
    assert_eq!(record.steps[6].error_kind(), "timeout");
    assert_eq!(record.steps[7].result["current"], "v1.0.0");
    assert_eq!(record.steps[7].result["marked_failed"], "v3.0.0");
    assert!(record.steps[8].result["in_place"].is_array());
    assert_eq!(fleet.current(k), "v1.0.0");
    assert!(fleet.answer(k).contains(r#""version":"v1.0.0""#));
    let server = format!("app/node{k}");
    assert_eq!(fleet.settled_haproxy_status(&server, "DRAIN"), "DRAIN");
}

/// The repository's `examples/`.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}
