//! `examples/compose/` (issue 24) run as an operator runs it: `demo.sh` builds three images
//! of the demo service into a loopback registry, starts HAProxy on the host in front of web's
//! two slots, installs v1.0.0, upgrades to v2.0.0 with `upgrade.sh` (web start-first, worker
//! stop-first) and tries v3.0.0, which is healthy but fails every other unit of work, so
//! ugw-verify fails it after the swap and upgrade.sh's failure path swaps v2.0.0 back in
//! (start-first too) and restores the data volume. A load generator goes through HAProxy the
//! whole time: no request fails while v2.0.0 goes in, while v3.0.0 goes in, or while v2.0.0
//! comes back (only the restore, which stops the containers using the volume, may cost some).
//! The records, the versions HAProxy served, the database after the restore and what is left
//! in Docker afterwards (nothing) are checked. The README's "With Docker Compose" example is
//! upgrade.sh's own text, so this run is the README's example run as written.

use crate::kit;
use crate::kit::docker::{self, Cleanup};
use kit::load::Load;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The whole demo: three images built, three runs (under a minute on an idle machine).
const DEMO_LIMIT: Duration = Duration::from_secs(300);

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The lines of the README's "With Docker Compose" section between a ```` ```LANGUAGE ````
/// fence and the next fence, for each such block, in order.
fn readme_blocks(language: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != "## With Docker Compose")
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .collect();
    assert!(
        !section.is_empty(),
        "README.md has no \"## With Docker Compose\""
    );
    let mut blocks = Vec::new();
    let mut open: Option<Vec<String>> = None;
    for line in section {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(fence)) if fence == language => open = Some(Vec::new()),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(lines), None) => lines.push(line.trim().to_string()),
            _ => {}
        }
    }
    blocks
}

/// Whether `lines` appear in `text` one after the other, each line trimmed.
fn holds_in_order(text: &str, lines: &[String]) -> bool {
    let trimmed: Vec<&str> = text.lines().map(str::trim).collect();
    trimmed
        .windows(lines.len())
        .any(|window| window.iter().zip(lines).all(|(a, b)| a == b))
}

/// The README's Compose pipeline (its `sh` block, which `doc_examples` leaves to this module)
/// and its failure path (the `text` block) are upgrade.sh's own lines, word for word: the
/// demo, which runs upgrade.sh, runs the README's example as written (and ugw(7)'s).
fn assert_readme_example_is_upgrade_sh() {
    let script = std::fs::read_to_string(repo_file("examples/compose/upgrade.sh")).unwrap();
    let pipeline = readme_blocks("sh");
    assert_eq!(pipeline.len(), 1, "one sh block: {pipeline:#?}");
    let documented = crate::docs::readme(&std::fs::read_to_string(repo_file("README.md")).unwrap());
    assert!(
        documented
            .iter()
            .any(|e| e.text.contains("ugw-swap --compose") && e.text.contains("ugw-fetch --image")),
        "crate::docs finds the pipeline: {documented:#?}"
    );
    // ugw(7)'s Containers example is the same pipe (man/ugw.7 is made from this file, and
    // xtask's staleness check keeps it so).
    let overview = std::fs::read_to_string(repo_file("xtask/src/ugw.7.in")).unwrap();
    assert!(
        holds_in_order(&overview, &pipeline[0]),
        "ugw(7)'s Containers example is not the README's"
    );
    let failure_path = readme_blocks("text");
    assert_eq!(failure_path.len(), 1, "one text block: {failure_path:#?}");
    for block in pipeline.iter().chain(&failure_path) {
        assert!(
            holds_in_order(&script, block),
            "README.md's example is not upgrade.sh's text:\n{}",
            block.join("\n")
        );
    }
}

#[test]
fn the_readme_example_is_the_upgrade_script_s_own_text() {
    assert_readme_example_is_upgrade_sh();
}

/// demo.sh running in a process group of its own, its stderr collected line by line as it
/// comes; on drop (a failed assertion) the group gets SIGTERM, so its trap cleans up.
struct Demo {
    child: Option<Child>,
    said: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Demo {
    fn start(tmp: &Path, project: &str, records: &Path) -> Demo {
        let mut cmd = Command::new("bash");
        cmd.arg("examples/compose/demo.sh")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("UGW_BIN_DIR", kit::bin("ugw-demo-app").parent().unwrap())
            .env("TMPDIR", tmp)
            .env("COMPOSE_DEMO_PROJECT", project)
            .env("COMPOSE_DEMO_RECORDS", records)
            .env_remove("UGW_HOST_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("bash starts");
        let stderr = child.stderr.take().unwrap();
        let said = Arc::new(Mutex::new(String::new()));
        let reader = {
            let said = Arc::clone(&said);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut said = said.lock().unwrap();
                    said.push_str(&line);
                    said.push('\n');
                }
            })
        };
        Demo {
            child: Some(child),
            said,
            reader: Some(reader),
        }
    }

    fn said(&self) -> String {
        self.said.lock().unwrap().clone()
    }

    /// The first line that starts with `prefix`, once the demo has said it.
    #[track_caller]
    fn line(&self, prefix: &str, within: Duration) -> String {
        let find = || {
            self.said()
                .lines()
                .find(|line| line.starts_with(prefix))
                .map(String::from)
        };
        let found = kit::eventually(within, || find().is_some());
        assert!(found, "the demo never said {prefix:?}:\n{}", self.said());
        find().unwrap()
    }

    /// Wait until it exits (within `within`); its exit code and everything it said.
    fn finish(mut self, within: Duration) -> (Option<i32>, String) {
        let child = self.child.take().unwrap();
        let status = kit::wait_bounded(child, within).status;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status.code(), self.said())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kit::signal(-child.id().cast_signed(), libc::SIGTERM);
            let stopped = kit::eventually(Duration::from_secs(30), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !stopped {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The versions HAProxy answered `/health/ready` with, in order (each change once), polled
/// every 50 ms until stopped.
struct Versions {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl Versions {
    fn watch(port: u16) -> Versions {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen: Vec<String> = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let answer = docker::http_get(port, "/health/ready").map(|(code, body)| {
                        let value: serde_json::Value =
                            serde_json::from_str(&body).unwrap_or_default();
                        format!("{code} {}", value["version"].as_str().unwrap_or("?"))
                    });
                    if let Some(answer) = answer
                        && seen.last() != Some(&answer)
                    {
                        seen.push(answer);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                seen
            })
        };
        Versions {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Versions {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The port of `http://127.0.0.1:PORT` at the start of `text`.
fn port_of(text: &str) -> u16 {
    let rest = text.split_once("http://127.0.0.1:").unwrap().1;
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn record(dir: &Path, name: &str) -> kit::Record {
    kit::parse_record(&std::fs::read_to_string(dir.join(name)).unwrap())
}

fn tools(record: &kit::Record) -> Vec<&str> {
    record.steps.iter().map(|s| s.tool.as_str()).collect()
}

#[test]
fn the_compose_demo_upgrades_web_start_first_under_load_and_the_failure_path_puts_v2_back() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    if !kit::require("haproxy") || !kit::require("envsubst") || !kit::require("docker-registry") {
        return;
    }
    assert_readme_example_is_upgrade_sh();
    let cleanup = Cleanup::new();
    let project = cleanup.name("demo");
    let tmp = tempfile::tempdir().unwrap();
    let records = tempfile::tempdir().unwrap();
    let demo = Demo::start(tmp.path(), &project, records.path());

    let lb = port_of(&demo.line("== HAProxy listens at", Duration::from_secs(120)));
    let registry = demo.said().lines().find_map(|l| {
        l.strip_prefix("== images pushed to ")
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
    });
    demo.line("== v1.0.0 serves through HAProxy", Duration::from_secs(90));
    let versions = Versions::watch(lb);
    let load = Load::start(
        &format!("http://127.0.0.1:{lb}/health/ready"),
        40,
        DEMO_LIMIT,
    );
    // Each start-first swap under load: v2.0.0 in, v3.0.0 in, and (the failure path's
    // rollback, start-first too) v2.0.0 back; none of them fails a request.
    for (line, what) in [
        ("== v2.0.0 serves through HAProxy", "v2.0.0 went in"),
        ("upgrade.sh: the upgrade to v3.0.0 failed", "v3.0.0 went in"),
        ("ugw-swap: rolled back to", "v2.0.0 came back"),
    ] {
        demo.line(line, Duration::from_secs(90));
        let tally = load.tally();
        assert!(tally.sent > 20, "{what}: {tally:?}");
        assert_eq!(tally.bad(), 0, "{what}: {tally:?}: {:?}", load.failures());
    }
    let (code, said) = demo.finish(DEMO_LIMIT);
    let total = load.stop();
    let served = versions.stop();
    assert_eq!(code, Some(0), "{said}");
    eprintln!("{said}\nthrough HAProxy: {total:?} (the restore stops web for a moment)");

    assert_records(records.path());
    // HAProxy served v1.0.0, v2.0.0, v3.0.0 and v2.0.0 again, in that order.
    let mut ok: Vec<&str> = served
        .iter()
        .filter_map(|a| a.strip_prefix("200 "))
        .collect();
    ok.dedup();
    assert_eq!(ok, ["v1.0.0", "v2.0.0", "v3.0.0", "v2.0.0"], "{served:?}");
    // The slow request in flight through HAProxy when the old slot was drained got its 200;
    // the restore took v3.0.0's column away again and kept the rows.
    assert!(
        said.contains("the request in flight during the swap got 200\n"),
        "{said}"
    );
    assert!(
        said.contains("schema now: items(id, name, note), 2 rows\n"),
        "{said}"
    );
    assert_nothing_left(&project, lb, registry.as_deref(), tmp.path());
}

/// v1.0.0 installed, v2.0.0 upgraded in full, v3.0.0 upgraded, failed by its checks and
/// taken back: each record's steps and the fields that say what happened.
fn assert_records(dir: &Path) {
    let v1 = record(dir, "v1.json");
    assert!(v1.ok, "{v1:#?}");
    let v1_slot = v1.steps[2].result["compose"]["slot"].clone();
    let v1_reference = v1.steps[0].result["reference"].clone();
    let v2 = record(dir, "v2.json");
    assert!(v2.ok, "{v2:#?}");
    let v2_reference = assert_upgraded(&v2, "v2.0.0", &v1_reference);
    assert_ne!(
        v2.steps[3].result["compose"]["slot"], v1_slot,
        "the other slot"
    );
    assert_eq!(v2.steps[2].result["applied"][0]["name"], "add_items_note");

    let v3 = record(dir, "v3.json");
    assert!(!v3.ok, "{v3:#?}");
    let statuses: Vec<(&str, &str)> = v3
        .steps
        .iter()
        .map(|s| (s.tool.as_str(), s.status.as_str()))
        .collect();
    let pipeline = [
        ("ugw-backup", "ok"),
        ("ugw-fetch", "ok"),
        ("ugw-migrate", "ok"),
        ("ugw-swap", "ok"),
        ("ugw-swap", "ok"),
        ("ugw-wait-healthy", "ok"),
        ("ugw-verify", "failed"),
    ];
    let failure_path = [
        ("ugw-swap", "ok"),
        ("ugw-swap", "ok"),
        ("ugw-backup", "ok"),
        ("ugw-wait-healthy", "ok"),
    ];
    assert_eq!(statuses[..7], pipeline);
    assert_eq!(statuses[7..], failure_path);
    let v3_reference = assert_upgraded(&v3, "v3.0.0", &v2_reference);
    assert_eq!(v3.steps[6].error.as_ref().unwrap().kind, "check_failed");
    assert_eq!(
        v3.steps[2].result["applied"][0]["name"],
        "add_items_priority"
    );
    assert_taken_back(&v3, &v2_reference, &v3_reference);
}

/// A run whose pipeline went through its swaps: the image fetched by digest, web and worker
/// both switched from `before` to it, HAProxy answering `version`. Returns the reference.
fn assert_upgraded(
    record: &kit::Record,
    version: &str,
    before: &serde_json::Value,
) -> serde_json::Value {
    assert_eq!(
        tools(record)[..7],
        [
            "ugw-backup",
            "ugw-fetch",
            "ugw-migrate",
            "ugw-swap",
            "ugw-swap",
            "ugw-wait-healthy",
            "ugw-verify"
        ]
    );
    assert!(
        record.steps[0].result["volumes"]
            .to_string()
            .contains("-data")
    );
    let fetched = &record.steps[1].result;
    assert_eq!(fetched["version"], version);
    let reference = fetched["reference"].clone();
    assert!(reference.to_string().contains("@sha256:"), "{fetched}");
    let (web, worker) = (&record.steps[3].result, &record.steps[4].result);
    for swapped in [web, worker] {
        assert_eq!(swapped["current"], reference, "{swapped}");
        assert_eq!(swapped["previous"], *before, "{swapped}");
    }
    assert!(web["compose"]["slot"].is_u64(), "start-first: {web}");
    assert!(worker["compose"]["slot"].is_null(), "stop-first: {worker}");
    let answered = record.steps[5].result.to_string();
    assert!(
        answered.contains(&format!(r#"\"version\":\"{version}\""#)),
        "{answered}"
    );
    reference
}

/// The failure path of the v3.0.0 run: both swaps rolled back to v2.0.0 (v3.0.0 marked
/// failed, web on the slot it left), the volume restored with its two containers stopped
/// and started again, and v2.0.0 answering through HAProxy.
fn assert_taken_back(v3: &kit::Record, v2: &serde_json::Value, v3_reference: &serde_json::Value) {
    for rollback in &v3.steps[7..9] {
        assert!(rollback.changed, "{}", rollback.result);
        assert_eq!(rollback.result["rollback"], true);
        assert_eq!(rollback.result["current"], *v2);
        assert_eq!(rollback.result["marked_failed"], *v3_reference);
    }
    assert_ne!(
        v3.steps[7].result["compose"]["slot"], v3.steps[3].result["compose"]["slot"],
        "back on the other slot"
    );
    let restored = &v3.steps[9].result;
    let stopped = &restored["containers"]["stopped"];
    assert_eq!(stopped.as_array().map(Vec::len), Some(2), "{restored}");
    assert_eq!(restored["containers"]["started"], *stopped);
    let answered = v3.steps[10].result.to_string();
    assert!(answered.contains(r#"\"version\":\"v2.0.0\""#), "{answered}");
}

/// Nothing of the demo is left: no container, volume or network of its projects, no image of
/// its repository, HAProxy and the registry stopped, its temp folder gone.
fn assert_nothing_left(project: &str, lb: u16, registry: Option<&str>, tmp: &Path) {
    let containers = docker::docker_ok(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Label \"com.docker.compose.project\"}}",
    ]);
    assert!(!containers.contains(project), "{containers}");
    let volumes = docker::docker_ok(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(!volumes.contains(project), "{volumes}");
    let networks = docker::docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.contains(project), "{networks}");
    let images = docker::docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains(project), "{images}");
    assert!(docker::http_get(lb, "/").is_none(), "HAProxy stopped");
    let registry = registry.expect("the demo named its registry");
    let port: u16 = registry.rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(
        docker::http_get(port, "/v2/").is_none(),
        "the registry stopped"
    );
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
    assert!(
        left.is_empty(),
        "the demo's temp folder is removed: {left:?}"
    );
}
