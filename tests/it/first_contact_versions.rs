//! Issue 21, items 9, 13 and 17, through the real binaries: `ugw-backup create --root` records
//! the version of the release ugw-swap made current, `--name` templates and a retry of the
//! same run that reuses its own archive (and nothing else), `ugw-backup list`'s table on a
//! terminal, and `ugw-wait-healthy --always --expect-version` after this run's rollback
//! expecting the version the rollback went back to.

use crate::kit;

use kit::{Outcome, s, swap, tool, with_stdin};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A release folder `name` under `dir`, holding `app.txt`.
fn artifact(dir: &Path, name: &str) -> PathBuf {
    let folder = dir.join("staging").join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("app.txt"), name).unwrap();
    folder
}

/// ugw-swap on `root` to the release `name`, continuing the run of `record` (a fresh run
/// without one).
fn swap_to(dir: &Path, root: &Path, name: &str, record: Option<&str>) -> Outcome {
    let from = artifact(dir, name);
    let args = ["--root", s(root), "--from", s(&from), "--release", name];
    let out = match record {
        Some(record) => {
            let mut cmd = tool("ugw-swap");
            cmd.args(args);
            with_stdin(cmd, record)
        }
        None => swap(&args),
    };
    out.succeeds();
    out
}

fn backup_with(args: &[&str], record: Option<&str>) -> Outcome {
    let mut cmd = tool("ugw-backup");
    cmd.args(args);
    match record {
        Some(record) => with_stdin(cmd, record),
        None => kit::run(cmd),
    }
}

/// A data folder with one file, and a backup folder beside it.
fn data(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("state"), "kept\n").unwrap();
    (data, dir.join("backups"))
}

fn result_str(out: &Outcome, field: &str) -> String {
    out.last_step().result[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {}", out.stdout))
        .to_string()
}

#[test]
fn create_with_root_records_the_version_of_the_current_release() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    swap_to(dir.path(), &root, "1.4.2", None);
    let (data, out) = data(dir.path());

    let made = backup_with(
        &[
            "create",
            "--path",
            s(&data),
            "--out",
            s(&out),
            "--root",
            s(&root),
            "--name",
            "app-before-{version}-{time}",
        ],
        None,
    );
    made.succeeds();
    assert_eq!(result_str(&made, "app_version"), "1.4.2", "{}", made.stderr);
    let archive = PathBuf::from(result_str(&made, "archive"));
    let name = archive.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("app-before-1.4.2-2"), "{name}");
    assert!(name.ends_with("Z.tar.gz"), "{name}");
    let stem = name.strip_suffix(".tar.gz").unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{stem}.manifest.json"))).unwrap())
            .unwrap();
    assert_eq!(manifest["app_version"], "1.4.2");

    // The flag wins over the root's release.
    let given = backup_with(
        &[
            "create",
            "--path",
            s(&data),
            "--out",
            s(&out),
            "--root",
            s(&root),
            "--app-version",
            "9",
        ],
        None,
    );
    given.succeeds();
    assert_eq!(result_str(&given, "app_version"), "9");

    // A root with no current release names no version: a usage error, nothing written.
    let empty = dir.path().join("empty-root");
    std::fs::create_dir_all(&empty).unwrap();
    let before = std::fs::read_dir(&out).unwrap().count();
    let none = backup_with(
        &[
            "create",
            "--path",
            s(&data),
            "--out",
            s(&out),
            "--root",
            s(&empty),
        ],
        None,
    );
    none.assert_code(2).stderr_has("give --app-version");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), before);
}

#[test]
fn a_name_template_is_filled_in_and_a_bad_one_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = data(dir.path());
    let record = kit::fetch_record("2.0.0");
    let made = backup_with(
        &[
            "create",
            "--in",
            "-",
            "--path",
            s(&data),
            "--out",
            s(&out),
            "--app-version",
            "2.0.0",
            "--name",
            "app-{version}-{run}",
        ],
        Some(&record),
    );
    made.succeeds();
    assert!(
        result_str(&made, "archive").ends_with("/app-2.0.0-20261121T235901Z-test-0001.tar.gz"),
        "{}",
        made.stdout
    );
    for bad in ["app-{nope}", "app-{version}"] {
        let refused = backup_with(
            &[
                "create",
                "--path",
                s(&data),
                "--out",
                s(&out),
                "--name",
                bad,
            ],
            None,
        );
        refused.assert_code(2);
    }
}

/// `--name fixed` created from `record`.
fn create_fixed(data: &Path, out: &Path, record: Option<&str>) -> Outcome {
    let mut args = vec![
        "create",
        "--path",
        s(data),
        "--out",
        s(out),
        "--app-version",
        "1.0",
        "--name",
        "fixed",
    ];
    if record.is_some() {
        args.extend(["--in", "-"]);
    }
    backup_with(&args, record)
}

#[test]
fn a_retry_of_the_same_run_reuses_its_own_archive_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = data(dir.path());
    let record = kit::fetch_record("1.0");

    let first = create_fixed(&data, &out, Some(&record));
    first.succeeds();
    assert!(first.last_step().changed);
    let archive = result_str(&first, "archive");
    let sha256 = result_str(&first, "sha256");
    let written = std::fs::metadata(&archive).unwrap().modified().unwrap();

    // The same record again (the pipe line rerun after a later step failed): reused.
    let retry = create_fixed(&data, &out, Some(&record));
    retry.succeeds();
    let step = retry.last_step();
    assert!(!step.changed, "{}", retry.stderr);
    assert_eq!(result_str(&retry, "archive"), archive);
    assert_eq!(result_str(&retry, "sha256"), sha256);
    assert_eq!(
        std::fs::metadata(&archive).unwrap().modified().unwrap(),
        written
    );
    retry.stderr_has("reusing it");

    // A retry whose record already holds this run's create step, with another digest: refused.
    let mut forged: serde_json::Value = serde_json::from_str(first.stdout.trim()).unwrap();
    forged["steps"][1]["result"]["sha256"] = "ab".repeat(32).into();
    let refused = create_fixed(&data, &out, Some(&forged.to_string()));
    refused.assert_code(2).stderr_has("sha256");

    // Another run, the same name: refused as before.
    let other = create_fixed(&data, &out, None);
    other
        .assert_code(2)
        .stderr_has("exists already")
        .stderr_has("not this run");

    // Other paths under the same name in the same run: refused.
    let elsewhere = dir.path().join("other");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let moved = create_fixed(&elsewhere, &out, Some(&record));
    moved.assert_code(2);

    // The archive tampered with (one byte in its middle): not reused, not replaced.
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();
    let tampered = create_fixed(&data, &out, Some(&record));
    tampered.assert_code(2).stderr_has("not whole");
    assert_eq!(std::fs::read(&archive).unwrap(), bytes, "left as found");
}

#[test]
fn list_prints_a_table_on_a_terminal_only() {
    if !kit::require("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = data(dir.path());
    backup_with(
        &[
            "create",
            "--path",
            s(&data),
            "--out",
            s(&out),
            "--app-version",
            "3.1.4",
            "--name",
            "listed",
        ],
        None,
    )
    .succeeds();

    // Not a terminal: the record alone.
    let piped = backup_with(&["list", "--out", s(&out)], None);
    piped.succeeds().stderr_lacks("APP VERSION");
    let backups = piped.last_step().result["backups"].clone();
    assert_eq!(backups[0]["app_version"], "3.1.4");

    // On a terminal (script(1) gives it a pty): the table on stderr, the record on stdout still.
    let stdout_file = dir.path().join("stdout.json");
    let line = format!(
        "{} list --out {} > {}",
        s(&kit::bin("ugw-backup")),
        s(&out),
        s(&stdout_file)
    );
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    let shown = kit::run_within(script, Duration::from_secs(60));
    shown.succeeds();
    let screen = shown.stdout.replace('\r', "");
    let header = screen
        .lines()
        .find(|l| l.starts_with("ARCHIVE"))
        .unwrap_or_else(|| panic!("no table on the terminal: {screen}"));
    for column in ["CREATED", "SIZE", "APP VERSION", "STATE"] {
        assert!(header.contains(column), "{header}");
    }
    let row = screen
        .lines()
        .find(|l| l.starts_with("listed.tar.gz"))
        .unwrap_or_else(|| panic!("no row: {screen}"));
    assert!(row.contains("3.1.4") && row.contains("complete"), "{row}");
    let record = kit::parse_record(&std::fs::read_to_string(&stdout_file).unwrap());
    assert_eq!(record.steps[0].result["backups"], backups);
}

#[test]
fn expect_version_without_a_value_after_a_rollback_expects_the_version_it_went_back_to() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let first = swap_to(dir.path(), &root, "v1", None);
    let second = swap_to(dir.path(), &root, "v2", Some(&first.stdout));
    // The run failed after its switch; its failure path rolls back to v1.
    let mut failed: serde_json::Value = serde_json::from_str(second.stdout.trim()).unwrap();
    failed["ok"] = false.into();
    let mut cmd = tool("ugw-swap");
    cmd.args(["--root", s(&root), "--rollback"]);
    let back = with_stdin(cmd, &failed.to_string());
    back.succeeds();
    assert_eq!(kit::current(&root), "releases/v1");

    let body = r#"{"status":"ok","version":"v1"}"#;
    let old = kit::RawServer::start(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &old.url(),
        "--always",
        "--expect-version",
        "--timeout",
        "10s",
        "--in",
        "-",
    ]);
    let waited = with_stdin(cmd, &back.stdout);
    waited.succeeds();
    assert_eq!(
        waited.last_step().wait_result().expect_version.as_deref(),
        Some("v1"),
        "{}",
        waited.stderr
    );

    // A rollback step of another run (or host) is not this run's: it names no version here.
    let mut foreign: serde_json::Value = serde_json::from_str(back.stdout.trim()).unwrap();
    foreign["steps"][2]["run"] = "20261101T000000Z-elsewhere-0001".into();
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &old.url(),
        "--always",
        "--expect-version",
        "--timeout",
        "2s",
        "--in",
        "-",
    ]);
    let refused = with_stdin(cmd, &foreign.to_string());
    refused.assert_code(2).stderr_has("no value");

    // Without the rollback, the same record's fetched-less run has no version to expect.
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &old.url(),
        "--expect-version",
        "--timeout",
        "2s",
        "--in",
        "-",
    ]);
    with_stdin(cmd, &second.stdout).assert_code(2);
}
