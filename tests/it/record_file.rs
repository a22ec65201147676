//! `--record FILE` and what `cli` does around a tool's run, as an adversary and an operator
//! meet them: planted symlinks and files that are not records, stdout that cannot be written,
//! a panic, the common flags after a subcommand, an inverse, the declared deadline, `--output`
//! and an exec after the record. Uses the real binaries (and `ugw-test-tool`, a tool with
//! subcommands built for these tests from `tests/support/test_tool.rs`).

use crate::kit;

use kit::{bash, parse_record, require, tool, wait_healthy};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The test tool (an example target, built by `cargo test`).
fn test_tool() -> Command {
    let path = kit::bin("ugw-wait-healthy")
        .with_file_name("examples")
        .join("ugw-test-tool");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it",
        path.display()
    );
    let mut cmd = Command::new(path);
    cmd.env_remove("UGW_HOST_ID")
        .stdin(std::process::Stdio::null());
    cmd
}

fn run_test_tool(args: &[&str]) -> kit::Outcome {
    let mut cmd = test_tool();
    cmd.args(args);
    kit::run(cmd)
}

fn read_record(path: &Path) -> kit::Record {
    parse_record(&std::fs::read_to_string(path).unwrap())
}

/// Whether this test may act as the user nobody: root and `setpriv` are needed (CI has both).
fn can_act_as_nobody() -> bool {
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "acting as the user nobody needs root under CI=true"
        );
        eprintln!("SKIPPED: acting as the user nobody needs root");
        return false;
    }
    require("setpriv")
}

fn nobody_group() -> &'static str {
    let has_nogroup = Command::new("getent")
        .args(["group", "nogroup"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_nogroup { "nogroup" } else { "nobody" }
}

/// `ln -s target link`, run as nobody.
fn symlink_as_nobody(target: &Path, link: &Path) {
    let status = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            &format!("--regid={}", nobody_group()),
            "--clear-groups",
        ])
        .arg("ln")
        .arg("-s")
        .arg(target)
        .arg(link)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A folder under /tmp that nobody may write (the attacker's), with a started record in it.
fn folder_nobody_writes() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let uid: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    std::os::unix::fs::chown(&ws, Some(uid), None).unwrap();
    (dir, ws)
}

#[test]
fn a_lock_file_planted_as_a_symlink_is_refused_and_its_target_untouched() {
    if !can_act_as_nobody() {
        return;
    }
    let (dir, ws) = folder_nobody_writes();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let record = ws.join("u.json");
    run_test_tool(&["create", "--record", record.to_str().unwrap(), "--new"]).succeeds();
    let lock = ws.join("u.json.lock");
    std::fs::remove_file(&lock).unwrap();
    symlink_as_nobody(&victim, &lock);

    let out = wait_healthy(&["--record", record.to_str().unwrap(), "--cmd", "true"]);
    out.assert_code(2).stderr_has("symbolic link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        read_record(&record).steps.len(),
        1,
        "the file is left as it was"
    );
    let step = out.last_step();
    assert_eq!(
        (step.exit, step.error_kind()),
        (2, "usage"),
        "the record on stdout says why"
    );

    // A dangling link would have made root create a file wherever it points.
    let nowhere = dir.path().join("created-by-root");
    std::fs::remove_file(&lock).unwrap();
    symlink_as_nobody(&nowhere, &lock);
    wait_healthy(&["--record", record.to_str().unwrap(), "--cmd", "true"]).assert_code(2);
    assert!(!nowhere.exists());
}

#[test]
fn a_record_file_symlink_is_followed_only_when_it_is_the_callers_or_roots() {
    if !can_act_as_nobody() {
        return;
    }
    let (dir, ws) = folder_nobody_writes();
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, "root:$6$saltsalt$SECRETHASH:19000:0:99999:7:::\n").unwrap();
    let link = ws.join("u.json");
    symlink_as_nobody(&secret, &link);
    let out = wait_healthy(&["--record", link.to_str().unwrap(), "--cmd", "true"]);
    out.assert_code(2)
        .stderr_has("owned by uid")
        .never_shows("SECRETHASH");
    assert_eq!(out.last_step().error_kind(), "usage");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // The caller's own link is followed: the record it points at gains the step, the link stays.
    let real = dir.path().join("real.json");
    run_test_tool(&["create", "--record", real.to_str().unwrap(), "--new"]).succeeds();
    let mine = dir.path().join("mine.json");
    std::os::unix::fs::symlink(&real, &mine).unwrap();
    wait_healthy(&["--record", mine.to_str().unwrap(), "--cmd", "true"]).succeeds();
    assert_eq!(read_record(&real).steps.len(), 2);
    assert!(
        std::fs::symlink_metadata(&mine)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        dir.path().join("real.json.lock").exists(),
        "the lock is beside the real file"
    );
}

#[test]
fn a_record_file_that_is_not_the_callers_is_never_quoted() {
    if !can_act_as_nobody() {
        return;
    }
    let (_dir, ws) = folder_nobody_writes();
    let theirs = ws.join("theirs.json");
    std::fs::write(&theirs, "api_token_value=TOPSECRET123 and more\n").unwrap();
    let nobody: u32 = std::fs::metadata(&ws).unwrap().uid();
    std::os::unix::fs::chown(&theirs, Some(nobody), None).unwrap();
    let out = wait_healthy(&["--record", theirs.to_str().unwrap(), "--cmd", "true"]);
    out.fails_with(kit::Kind::BadRecord)
        .stderr_has("not a ugw record")
        .never_shows("TOPSECRET");

    // The caller's own file is quoted, to help them see what it is.
    let own = ws.join("own.json");
    std::fs::write(&own, "hello there\n").unwrap();
    let out = wait_healthy(&["--record", own.to_str().unwrap(), "--cmd", "true"]);
    out.assert_code(2).stderr_has("hello there");
}

#[test]
fn a_record_file_that_is_not_a_small_plain_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO nobody writes to: opening it for reading would block forever.
    let fifo = dir.path().join("fifo.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // 3 GB that costs nothing on disk, and would cost 3 GB of memory if read.
    let sparse = dir.path().join("sparse.json");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    for (path, needle, kind) in [
        (fifo.as_path(), "not a regular file", kit::Kind::Usage),
        (
            Path::new("/dev/zero"),
            "not a regular file",
            kit::Kind::Usage,
        ),
        (dir.path(), "not a regular file", kit::Kind::Usage),
        (sparse.as_path(), "larger than 16 MiB", kit::Kind::BadRecord),
    ] {
        let mut cmd = tool("ugw-wait-healthy");
        cmd.args(["--cmd", "true", "--record"]).arg(path);
        let started = std::time::Instant::now();
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let output = kit::wait_bounded(child, Duration::from_secs(20));
        let out = kit::Outcome::from(&output, started.elapsed()).case(path.display());
        out.fails_with(kind).stderr_has(needle);
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    // With --new, a FILE that is there and not a plain file is never replaced.
    let out = wait_healthy(&["--cmd", "true", "--new", "--record", fifo.to_str().unwrap()]);
    out.assert_code(2);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_record_that_cannot_be_written_to_stdout_is_exit_1_and_kept_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = bash(
        "ugw-wait-healthy --in none --cmd true >/dev/full; echo \"rc=$?\" >&2",
        dir.path(),
    );
    out.stderr_has("rc=1")
        .stderr_has("cannot write the record to stdout");
    // The file still has it; the code still says stdout did not.
    let out = bash(
        "ugw-wait-healthy --cmd true --record rec.json --new >/dev/full; echo \"rc=$?\" >&2",
        dir.path(),
    );
    out.stderr_has("rc=1");
    assert_eq!(
        read_record(&dir.path().join("rec.json")).steps[0].status,
        "ok"
    );
    // A failed step keeps its own code.
    let out = bash(
        "ugw-wait-healthy --in none --cmd false --timeout 300ms >/dev/full; echo \"rc=$?\" >&2",
        dir.path(),
    );
    out.stderr_has("rc=1");
}

#[test]
fn a_panic_is_a_failed_internal_step_appended_to_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let path = file.to_str().unwrap();
    run_test_tool(&["create", "--record", path, "--new"]).succeeds();
    let out = run_test_tool(&["create", "--panic", "--record", path]);
    out.assert_code(1);
    let saved = read_record(&file);
    assert_eq!(saved.steps.len(), 2, "appended to the incoming record");
    assert!(!saved.ok);
    let step = &saved.steps[1];
    assert_eq!(
        (step.status.as_str(), step.exit, step.error_kind()),
        ("failed", 1, "internal")
    );
    let message = &step.error.as_ref().unwrap().message;
    assert!(
        message.contains("asked to panic") && message.contains("test_tool.rs:"),
        "names the panic and where: {message}"
    );
    assert_eq!(out.record().steps.len(), 2, "stdout has it too");
    out.stderr_lacks("thread 'main' panicked")
        .stderr_has("asked to panic");
}

#[test]
fn the_common_flags_work_after_a_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let path = file.to_str().unwrap();
    let out = run_test_tool(&[
        "create",
        "--dry-run",
        "--record",
        path,
        "--new",
        "--host-id",
        "n1",
    ]);
    out.succeeds();
    let step = &read_record(&file).steps[0];
    assert_eq!((step.dry_run, step.host.as_str()), (true, "n1"));
    assert_eq!(step.result["job"], "create");
    assert_eq!(step.result["dry_run"], true, "the tool saw it in Ctx");

    // Before the subcommand as well; and a usage error after it still reaches the file.
    run_test_tool(&["--record", path, "create"]).succeeds();
    let out = run_test_tool(&["create", "--bogus", "--record", path, "--host-id", "n2"]);
    out.assert_code(2);
    let saved = read_record(&file);
    assert_eq!(saved.steps.len(), 3);
    let step = &saved.steps[2];
    assert_eq!((step.error_kind(), step.host.as_str()), ("usage", "n2"));
}

#[test]
fn only_the_declared_inverse_runs_on_a_failed_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let path = file.to_str().unwrap();
    run_test_tool(&["create", "--panic", "--record", path, "--new"]).assert_code(1);
    let out = run_test_tool(&["create", "--record", path]);
    out.assert_code(1);
    assert_eq!(out.last_step().status, "skipped");
    let out = run_test_tool(&["restore", "--record", path]);
    out.succeeds();
    let step = out.last_step();
    assert_eq!(
        (step.status.as_str(), step.result["job"].as_str()),
        ("ok", Some("restore"))
    );
}

#[test]
fn the_declared_default_timeout_is_the_deadline_ctx_gives() {
    let out = run_test_tool(&["create", "--in", "none"]);
    out.succeeds();
    assert_eq!(out.last_step().result["deadline_ms"], 7000);
    let out = run_test_tool(&["create", "--in", "none", "--timeout", "3s"]);
    assert_eq!(out.last_step().result["deadline_ms"], 3000);
    let help = run_test_tool(&["--help"]);
    help.stdout_has("[default: 7s]");
    let help = wait_healthy(&["--help"]);
    help.stdout_has("[default: 2m]");
}

#[test]
fn output_none_writes_nothing_and_pretty_indents() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let path = file.to_str().unwrap();
    let out = run_test_tool(&["create", "--record", path, "--new", "--output", "none"]);
    out.succeeds();
    assert_eq!(out.stdout, "");
    assert_eq!(
        read_record(&file).steps.len(),
        1,
        "the file keeps the record"
    );
    let out = run_test_tool(&["create", "--record", path, "--output", "pretty"]);
    assert!(out.stdout.lines().count() > 3, "{}", out.stdout);
    assert_eq!(parse_record(&out.stdout).steps.len(), 2);
    let out = run_test_tool(&["create", "--in", "none", "--output", "json"]);
    assert_eq!(out.record().steps.len(), 1);
    run_test_tool(&["create", "--in", "none", "--output", "json", "--pretty"]).assert_code(2);
}

#[test]
fn an_exec_after_the_record_replaces_the_tool_and_stdout_is_the_programs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let path = file.to_str().unwrap();
    // The program sees the record already saved, and owns stdout.
    let script = format!("echo exec-ran; grep -c '\"status\":\"ok\"' {path}; echo $$ > pid");
    let mut cmd = test_tool();
    cmd.current_dir(dir.path()).args([
        "create", "--record", path, "--new", "--exec", "sh", "-c", &script,
    ]);
    let out = kit::run(cmd);
    out.succeeds();
    assert_eq!(out.stdout, "exec-ran\n1\n", "{}", out.stderr);
    assert_eq!(read_record(&file).steps.len(), 1);

    // A program that is not there: the record is saved, the code says why.
    let out = run_test_tool(&["create", "--record", path, "--exec", "/nonexistent/prog"]);
    out.assert_code(127)
        .stderr_has("cannot run /nonexistent/prog");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bash(
        "ugw-wait-healthy --cmd true --record rec.json --new | true; \
         echo \"rc=${PIPESTATUS[0]}\"",
        dir.path(),
    );
    out.stdout_has("rc=0");
    assert_eq!(read_record(&dir.path().join("rec.json")).steps.len(), 1);
}

#[test]
fn a_terminal_gets_the_indented_record_and_a_summary_line() {
    if !require("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // `script` gives the tool a terminal for stdout and stderr.
    let out = bash(
        "script -qec 'ugw-wait-healthy --in none --cmd true' /dev/null",
        dir.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.stdout.replace("\r\n", "\n");
    let record_end = text.find("\n}\n").expect("an indented record") + 3;
    assert_eq!(
        parse_record(&text[text.find('{').unwrap()..record_end])
            .steps
            .len(),
        1
    );
    let summary = text[record_end..].trim();
    assert!(
        summary.starts_with("ugw-wait-healthy: ok in "),
        "a summary after the record: {text}"
    );
}
