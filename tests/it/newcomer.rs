//! Issue 21's "done when": ugw upgrading a service nobody here wrote, as a new user would from
//! the README. Datasette from the Python Package Index (two real releases, its version at
//! `/-/versions.json` under `.datasette.version`, a SQLite database), packed the way a Python
//! service ships with no service manager (`pip install --target lib/` and a launcher in
//! `bin/`), with its migrations, and started by `ugw-swap --start` (no start script of our
//! own). Two instances behind HAProxy take 50 requests a second while each is upgraded in turn
//! by the README's pipeline, with only flags the README documents: no failed request, both on
//! the new release, the schema changed on both. A release that dies at its start is detected
//! at once (`--alive-for`), not waited out, and the README's failure path puts the node back,
//! with no condition around it.
//!
//! The releases come from the Python Package Index: without it (no network, no pip) the test
//! says why and skips, unless CI is set.

use crate::kit;

use kit::haproxy::{HaProxy, Options, Server};
use kit::load::Load;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The release running before the upgrade, and the one it goes to.
const OLD: &str = "0.64.8";
const NEW: &str = "0.65.1";
/// A release after it that dies at its start.
const BROKEN: &str = "0.66.0";

/// One upgrade of one node: fetch, migrate, drain, restart, a Python server's start, undrain.
const UPGRADE_LIMIT: Duration = Duration::from_secs(150);

/// The migrations of each release: the new one adds a column the old one never reads.
const CREATE_ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
                            INSERT INTO items (name) VALUES ('first'), ('second');\n";
const ADD_NOTE: &str = "ALTER TABLE items ADD COLUMN note TEXT;\n";

/// `bin/app` of a release: Datasette from the release's own `lib/`, serving what it is given.
const LAUNCHER: &str = "#!/bin/sh\n\
    # Datasette from this release's lib/ (pip install --target), nothing from the host's site.\n\
    here=$(cd \"$(dirname \"$0\")/..\" && pwd)\n\
    PYTHONPATH=\"$here/lib\" exec python3 -s -m datasette serve \"$@\"\n";

/// A launcher that dies at once, as a release with a bad setting does.
const BROKEN_LAUNCHER: &str = "#!/bin/sh\n\
    echo 'datasette: Error: no such setting: max_returned_rowz' >&2\n\
    exit 2\n";

/// `datasette-VERSION.tar.gz` built under `build`: Datasette `datasette` installed from the
/// Python Package Index into `lib/` (none for a launcher that does not use it), the launcher,
/// and `migrations/` holding `migrations`. `None`, with the reason printed, when pip cannot
/// install it (and CI is unset).
fn release(
    build: &Path,
    version: &str,
    datasette: Option<&str>,
    launcher: &str,
    migrations: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let dir = build.join(version);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    if let Some(datasette) = datasette {
        pip_install(&dir.join("lib"), datasette)?;
    }
    let app = dir.join("bin/app");
    std::fs::write(&app, launcher).unwrap();
    std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (name, sql) in migrations {
        std::fs::write(dir.join("migrations").join(name), sql).unwrap();
    }
    let archive = build.join(format!("datasette-{version}.tar.gz"));
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-czf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    Some(std::fs::read(&archive).unwrap())
}

/// Datasette `version` and what it needs, from the Python Package Index into `lib`, as a release is built.
fn pip_install(lib: &Path, version: &str) -> Option<()> {
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .arg("--target")
        .arg(lib)
        .arg(format!("datasette=={version}"))
        .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .stdin(Stdio::null())
        .output()
        .expect("python3 starts");
    if !pip.status.success() {
        let why = format!(
            "pip cannot install datasette=={version}: {}",
            String::from_utf8_lossy(&pip.stderr).trim()
        );
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some(())
}

/// One node: its releases root, its database, its port, and how ugw-swap starts it
/// (`--start`, the README's way for a service without a service manager: no start script of
/// our own), its pid in `pidfile`, its output in `log`.
struct Node {
    name: String,
    root: PathBuf,
    db: PathBuf,
    port: u16,
    pidfile: PathBuf,
    log: PathBuf,
}

impl Node {
    fn new(dir: &Path, name: &str) -> Node {
        let home = dir.join(name);
        std::fs::create_dir_all(home.join("data")).unwrap();
        Node {
            name: name.to_string(),
            root: home.join("srv"),
            db: home.join("data/app.db"),
            port: kit::free_port(),
            pidfile: home.join("app.pid"),
            log: home.join("app.log"),
        }
    }

    /// What `ugw-swap --start` runs, in the folder of the release now live.
    fn start_command(&self) -> String {
        format!(
            "exec bin/app '{}' --host 127.0.0.1 --port {}",
            kit::s(&self.db),
            self.port
        )
    }

    /// The pid on the pidfile's first line (`ugw-swap --start` writes which process it is on
    /// the second).
    fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.pidfile).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Whether Datasette answers `version` now.
    fn answers(&self, version: &str) -> bool {
        let out = kit::wait_healthy(&[
            "--once",
            "--url",
            &self.url("/-/versions.json"),
            "--version-path",
            ".datasette.version",
            "--expect-version",
            version,
        ]);
        out.code == 0
    }

    fn columns(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(&self.db).unwrap();
        let mut statement = db
            .prepare("SELECT name FROM pragma_table_info('items') ORDER BY cid")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Stop the release it runs, whatever the test did.
        if let Some(pid) = self.pid() {
            kit::signal(pid, libc::SIGTERM);
            if !kit::gone(pid, Duration::from_secs(10)) {
                kit::signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// `script` run by bash in `dir` with the ugw binaries on PATH and these variables set, as an
/// operator's shell runs the README's lines.
fn shell(dir: &Path, script: &str, vars: &[(&str, String)]) -> kit::Outcome {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir)
        .env("PATH", kit::path_with_bins())
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::null());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    kit::run_within(cmd, UPGRADE_LIMIT)
}

/// The README's install and upgrade pipelines for one node, its flags all in the README.
const INSTALL: &str = r#"
ugw-fetch --url "$BASE/datasette-$V.tar.gz" --sha256-url "$BASE/SHA256SUMS" --dest "$STAGING" --extract \
 | ugw-migrate up --create --db "sqlite://$DB" \
 | ugw-swap --root "$ROOT" --start "$START" --pidfile "$PIDFILE" --log "$LOG" \
 | ugw-wait-healthy --url "$APP/-/versions.json" --version-path .datasette.version --expect-version \
     --pidfile "$PIDFILE" --timeout 60s \
 | tee install.json
"#;
const UPGRADE: &str = r#"
ugw-fetch --url "$BASE/datasette-$V.tar.gz" --sha256-url "$BASE/SHA256SUMS" --dest "$STAGING" --extract \
 | ugw-migrate up --db "sqlite://$DB" \
 | ugw-drain --haproxy "$SOCKET" --server "app/$NODE" \
 | ugw-swap --root "$ROOT" --start "$START" --pidfile "$PIDFILE" --log "$LOG" \
 | ugw-wait-healthy --url "$APP/-/versions.json" --version-path .datasette.version --expect-version \
     --pidfile "$PIDFILE" --timeout 60s \
 | ugw-drain --undo --haproxy "$SOCKET" --server "app/$NODE" \
 | tee run.json
"#;

/// The failure path as the README writes it (`tests/it/failure_path.rs` checks those lines), on
/// `run.json`, with Datasette's version URL for the demo's `/health/ready`. ugw-backup's
/// line is left out: this upgrade took no backup.
const FAILURE_PATH: &str = r#"
ugw-swap --root "$ROOT" --rollback --start "$START" --pidfile "$PIDFILE" --log "$LOG" --record run.json --output none
ugw-wait-healthy --url "$APP/-/versions.json" --version-path .datasette.version --expect-version "$OLD" --always \
  --record run.json --output none
ugw-drain --undo --always --record run.json --output pretty
"#;

fn vars(
    node: &Node,
    base: &str,
    version: &str,
    socket: &Path,
    staging: &Path,
) -> Vec<(&'static str, String)> {
    vec![
        ("BASE", base.to_string()),
        ("V", version.to_string()),
        ("STAGING", kit::s(staging).to_string()),
        ("DB", kit::s(&node.db).to_string()),
        ("ROOT", kit::s(&node.root).to_string()),
        ("START", node.start_command()),
        ("PIDFILE", kit::s(&node.pidfile).to_string()),
        ("LOG", kit::s(&node.log).to_string()),
        ("APP", node.url("")),
        ("SOCKET", kit::s(socket).to_string()),
        ("NODE", node.name.clone()),
    ]
}

/// The three releases (the old, the new, and one that dies at its start) built under `build`
/// and served with their `SHA256SUMS`: the server and its base URL. `None` when pip cannot
/// install Datasette (and CI is unset).
fn serve_releases(build: &Path) -> Option<(kit::file_server::FileServer, String)> {
    let first = [("0001_create_items.sql", CREATE_ITEMS)];
    let both = [
        ("0001_create_items.sql", CREATE_ITEMS),
        ("0002_add_items_note.sql", ADD_NOTE),
    ];
    let old = release(build, OLD, Some(OLD), LAUNCHER, &first)?;
    let new = release(build, NEW, Some(NEW), LAUNCHER, &both)?;
    let broken = release(build, BROKEN, None, BROKEN_LAUNCHER, &both)?;
    let server = kit::file_server::FileServer::start();
    let mut sums = Vec::new();
    for (version, bytes) in [(OLD, &old), (NEW, &new), (BROKEN, &broken)] {
        let name = format!("datasette-{version}.tar.gz");
        sums.push(format!("{}  {name}\n", kit::sha256(bytes)));
        server.put(&name, kit::file_server::Served::new(bytes));
    }
    let sums = sums.concat();
    server.put("SHA256SUMS", kit::file_server::Served::new(sums.as_bytes()));
    let base = server
        .url("SHA256SUMS")
        .trim_end_matches("/SHA256SUMS")
        .to_string();
    Some((server, base))
}

/// HAProxy in front of `nodes`, checking Datasette's version endpoint, every node UP.
fn balance(nodes: &[Node]) -> HaProxy {
    let servers: Vec<Server> = nodes
        .iter()
        .map(|n| Server::new(&n.name, &format!("127.0.0.1:{}", n.port), true))
        .collect();
    let options = Options {
        check_path: "/-/versions.json".into(),
        ..Options::default()
    };
    let haproxy = HaProxy::start_with(&servers, &options);
    for node in nodes {
        assert!(
            haproxy.wait_status(&node.name, "UP", Duration::from_secs(20)),
            "{}: {}",
            node.name,
            haproxy.log()
        );
    }
    haproxy
}

/// The README's upgrade of `node` to the new release: every step ok, the wait on the process
/// the restart started, the new release answering with its schema, back in traffic.
fn upgrade(dir: &Path, node: &Node, vars: &[(&str, String)], haproxy: &HaProxy) {
    let started = Instant::now();
    let out = shell(dir, UPGRADE, vars);
    out.succeeds();
    let record = out.record();
    assert!(record.ok, "{}", out.stdout);
    let tools: Vec<&str> = record.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(
        tools,
        [
            "ugw-fetch",
            "ugw-migrate",
            "ugw-drain",
            "ugw-swap",
            "ugw-wait-healthy",
            "ugw-drain"
        ]
    );
    let wait = &record.steps[4].result;
    let pid = node.pid().expect("ugw-swap --start wrote the pid");
    assert_eq!(
        wait["process"]["pid"], pid,
        "the wait watched the new release"
    );
    assert_eq!(wait["expect_version"], NEW);
    eprintln!("{} upgraded in {:?}", node.name, started.elapsed());
    assert!(node.answers(NEW), "{}", node.log());
    assert_eq!(kit::current(&node.root), format!("releases/{NEW}"));
    assert_eq!(node.columns(), ["id", "name", "note"]);
    assert!(haproxy.wait_status(&node.name, "UP", Duration::from_secs(10)));
}

#[test]
fn datasette_from_pypi_is_upgraded_node_by_node_behind_haproxy_under_load() {
    for program in ["python3", "tar", "haproxy"] {
        if !kit::require(program) {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some((_server, base)) = serve_releases(&tmp.path().join("build")) else {
        return;
    };

    // Two nodes on the old release, each installed by the README's pipeline.
    let nodes = [
        Node::new(tmp.path(), "node1"),
        Node::new(tmp.path(), "node2"),
    ];
    let staging = tmp.path().join("staging");
    let no_socket = tmp.path().join("no-socket-yet");
    for node in &nodes {
        let out = shell(
            tmp.path(),
            INSTALL,
            &vars(node, &base, OLD, &no_socket, &staging),
        );
        out.succeeds();
        assert!(node.answers(OLD), "{}", node.log());
    }
    let haproxy = balance(&nodes);
    let socket = haproxy.admin_socket();

    // 50 requests a second of real work (a query of the database) through HAProxy while each
    // node is upgraded in turn.
    let load = Load::start(
        &format!("{}/app/items.json", haproxy.url()),
        50,
        Duration::from_secs(600),
    );
    // The load is under way, answered, before the first node is touched.
    assert!(
        kit::eventually(Duration::from_secs(10), || load.tally().ok >= 25),
        "{:?}",
        load.tally()
    );
    for node in &nodes {
        upgrade(
            tmp.path(),
            node,
            &vars(node, &base, NEW, &socket, &staging),
            &haproxy,
        );
    }
    let tally = load.stop();
    eprintln!("load through HAProxy during both upgrades: {tally:?}");
    assert!(tally.ok >= 100, "{tally:?}");
    assert_eq!(tally.bad(), 0, "{tally:?}");

    // A release that dies at its start: ugw-swap --start sees it exit within --alive-for (not
    // a wait out to the 60 s deadline), says why with the release's own words, switches back
    // and starts the release before; the failure path then leaves the node there.
    let node = &nodes[0];
    let started = Instant::now();
    let out = shell(
        tmp.path(),
        UPGRADE,
        &vars(node, &base, BROKEN, &socket, &staging),
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "waited out: {:?}",
        started.elapsed()
    );
    let failed = out.record();
    let swap = failed.steps.iter().find(|s| s.tool == "ugw-swap").unwrap();
    assert_eq!(swap.error_kind(), "restart_failed", "{}", out.stdout);
    assert_eq!(swap.result["marked_failed"], BROKEN, "{}", out.stdout);
    assert!(
        swap.result["restarts"][0]["output"]
            .as_str()
            .is_some_and(|o| o.contains("no such setting")),
        "the release's own message is kept: {}",
        out.stdout
    );
    assert!(out.stderr.contains("no such setting"), "{}", out.stderr);
    assert_eq!(kit::current(&node.root), format!("releases/{NEW}"));
    assert_ne!(
        haproxy.status(&node.name),
        "UP",
        "a failed node stays out of traffic"
    );
    let mut back = vars(node, &base, NEW, &socket, &staging);
    back.push(("OLD", NEW.to_string()));
    let out = shell(tmp.path(), FAILURE_PATH, &back);
    out.succeeds();
    assert!(node.answers(NEW), "{}", node.log());
    assert_eq!(kit::current(&node.root), format!("releases/{NEW}"));
    assert!(haproxy.wait_status(&node.name, "UP", Duration::from_secs(10)));
}
