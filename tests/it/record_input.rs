//! What an incoming record may be, and what reading it costs: an unknown step status is a bad
//! record, empty and blank input is no input (without waiting forever on a full pipe), stdin
//! stops at the size cap, and a record passes through a tool without growing and in memory
//! a small multiple of its size.

use crate::kit;

use kit::{Outcome, bash, tool, with_stdin};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

/// A record of `bytes` (about) made of steps as sparse as a step may be, one field of each
/// kind missing that a tool would fill with a default.
fn sparse_record(bytes: usize) -> String {
    let step = r#"{"tool":"a","status":"ok"}"#;
    let head = r#"{"ugw":1,"run":"r-sparse","ok":true,"steps":["#;
    let count = (bytes - head.len() - 2) / (step.len() + 1);
    let mut text = String::with_capacity(bytes);
    text.push_str(head);
    for i in 0..count {
        if i > 0 {
            text.push(',');
        }
        text.push_str(step);
    }
    text.push_str("]}");
    text
}

/// `ugw-wait-healthy --in - --cmd 'touch MARKER'`: whether the marker exists after says
/// whether anything was attempted.
fn checked_run(dir: &Path) -> (Command, std::path::PathBuf) {
    let marker = dir.join("attempted");
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--in", "-", "--cmd"])
        .arg(format!("touch '{}'", marker.display()));
    (cmd, marker)
}

/// Runs a command as a grandchild and writes its peak memory (`ru_maxrss`, KiB) to the file
/// named first. Linux carries the pre-exec memory's high-water mark into `ru_maxrss`, so a
/// tool forked straight from this (large, many-test) process would be charged the test
/// process's own size; forked from a small python it is charged its own peak.
const PEAK_WRAPPER: &str = r"
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], 'w') as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
";

/// Run `cmd` with `stdin` for at most `kit::RUN_LIMIT`, with its peak memory: the maximum
/// resident set size the kernel accounted to it, in bytes.
fn measured(cmd: &Command, stdin: Stdio) -> (Outcome, usize) {
    let peak_file = tempfile::NamedTempFile::new().unwrap();
    let mut wrapped = Command::new("python3");
    wrapped
        .arg("-c")
        .arg(PEAK_WRAPPER)
        .arg(peak_file.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = wrapped.spawn().expect("python3 starts the tool");
    let stdout = drain(&mut child, true);
    let stderr = drain(&mut child, false);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the tool") {
            break status;
        }
        if started.elapsed() > kit::RUN_LIMIT {
            let _ = child.kill();
            panic!("still running after {:?}", kit::RUN_LIMIT);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let outcome = Outcome {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
        elapsed: started.elapsed(),
        case: None,
    };
    let max_rss_kib: usize = std::fs::read_to_string(peak_file.path())
        .unwrap()
        .trim()
        .parse()
        .expect("the wrapper wrote the peak");
    (outcome, max_rss_kib * 1024)
}

fn drain(child: &mut Child, stdout: bool) -> std::thread::JoinHandle<Vec<u8>> {
    let mut pipe: Box<dyn Read + Send> = if stdout {
        Box::new(child.stdout.take().unwrap())
    } else {
        Box::new(child.stderr.take().unwrap())
    };
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Peak memory of `ugw-wait-healthy --in - --cmd true` reading the record in `file`.
fn peak_reading(file: &Path) -> (Outcome, usize) {
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--in", "-", "--cmd", "true"]);
    measured(&cmd, std::fs::File::open(file).unwrap().into())
}

fn last_step(out: &Outcome) -> serde_json::Value {
    let record: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    record["steps"].as_array().unwrap().last().unwrap().clone()
}

#[test]
fn a_step_status_that_is_not_a_documented_word_is_a_bad_record() {
    for word in ["Failed", "bogus"] {
        let dir = tempfile::tempdir().unwrap();
        let (cmd, marker) = checked_run(dir.path());
        let input = serde_json::json!({
            "ugw": 1, "run": "r", "ok": true,
            "steps": [{"tool": "ugw-migrate", "status": word, "exit": 4}]
        });
        let out = with_stdin(cmd, &input.to_string());
        out.assert_code(2)
            .stderr_has(format!("status \"{word}\""))
            .stderr_has("ok, failed, skipped, interrupted");
        let step = out.last_step();
        assert_eq!((step.error_kind(), step.exit), ("bad_record", 2));
        assert!(!marker.exists(), "{word}: nothing may be attempted");
    }
}

#[test]
fn an_empty_or_blank_pipe_given_by_in_dash_is_no_input() {
    for input in ["", "\n \t\n"] {
        let dir = tempfile::tempdir().unwrap();
        let (cmd, marker) = checked_run(dir.path());
        let out = with_stdin(cmd, input);
        out.assert_code(3);
        let record = out.record();
        assert_eq!(record.steps.len(), 1, "a new record with the failed step");
        let step = &record.steps[0];
        assert_eq!((step.error_kind(), step.exit), ("no_input", 3));
        assert_eq!(step.status, "failed");
        assert!(!marker.exists(), "{input:?}: nothing may be attempted");
    }
}

#[test]
fn a_pipe_full_of_blank_bytes_is_judged_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    // More blanks than a pipe holds: the writer waits for room until the tool reads.
    let out = bash(
        "head -c 100000 /dev/zero | tr '\\0' '\\n' | ugw-wait-healthy --cmd 'touch attempted' --timeout 2s",
        dir.path(),
    );
    out.fails_with(kit::Kind::NoInput);
    assert!(
        out.took() < Duration::from_secs(5),
        "judged within the deadline: {:?}",
        out.took()
    );
    assert!(!dir.path().join("attempted").exists());

    // A record after the blanks is still read; anything else is still refused, quoted.
    std::fs::write(dir.path().join("in.json"), kit::fetch_record("v1.0.0")).unwrap();
    let out = bash(
        "{ head -c 1000000 /dev/zero | tr '\\0' ' '; cat in.json; } | ugw-wait-healthy --cmd true",
        dir.path(),
    );
    out.succeeds();
    let tools: Vec<String> = out.record().steps.into_iter().map(|s| s.tool).collect();
    assert_eq!(tools, ["ugw-fetch", "ugw-wait-healthy"]);
    let out = bash(
        "{ head -c 200000 /dev/zero | tr '\\0' '\\n'; echo hello; } | ugw-wait-healthy --cmd true",
        dir.path(),
    );
    out.assert_code(2).stderr_has("'hello'");
}

#[test]
fn a_few_blank_lines_before_input_that_is_not_ours_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Inherited (the shell around the tool reads the same pipe): left untouched, blanks too,
    // also when the blanks are all the tool sees at first (the rest comes later).
    let out = bash(
        "{ printf '\\n\\n\\n'; sleep 0.5; echo node1; } \
         | { ugw-wait-healthy --cmd true > rec.json; cat; }",
        dir.path(),
    );
    out.succeeds();
    assert_eq!(out.stdout, "\n\n\nnode1\n", "{}", out.stderr);
    let record = kit::parse_record(&std::fs::read_to_string(dir.path().join("rec.json")).unwrap());
    assert_eq!(record.steps.len(), 1, "a new record");
}

#[test]
fn an_endless_stream_on_stdin_stops_at_the_size_cap() {
    let _serial = kit::serial();
    for args in [&["--in", "-"][..], &[]] {
        let mut yes = Command::new("yes")
            .arg("{")
            .stdout(Stdio::piped())
            .spawn()
            .expect("yes runs");
        let mut cmd = tool("ugw-wait-healthy");
        cmd.args(args).args(["--cmd", "true"]);
        let (out, peak) = measured(&cmd, yes.stdout.take().unwrap().into());
        let _ = yes.kill();
        let _ = yes.wait();
        out.assert_code(2).stderr_has("larger than 16 MiB");
        assert_eq!(last_step(&out)["error"]["kind"], "bad_record");
        assert!(
            out.took() < Duration::from_secs(20),
            "{args:?}: stopped at the cap, not at the end: {:?}",
            out.took()
        );
        // The cap itself, the tool, and little else.
        assert!(peak < 48 * MIB, "{args:?}: peak memory {} MiB", peak / MIB);
    }
}

#[test]
fn a_record_passes_through_without_growing() {
    let dir = tempfile::tempdir().unwrap();
    let input = sparse_record(5 * MIB);
    let (cmd, marker) = checked_run(dir.path());
    let out = with_stdin(cmd, &input);
    out.succeeds();
    assert!(marker.exists());
    // The earlier steps byte for byte, then ours.
    let earlier = &input[..input.len() - 2];
    assert!(
        out.stdout.starts_with(earlier),
        "earlier steps changed: {}…",
        &out.stdout[..200]
    );
    let ours = &out.stdout[earlier.len()..];
    assert!(ours.len() < 1024, "only our step was added: {ours}");
    assert_eq!(last_step(&out)["tool"], "ugw-wait-healthy");

    // The same through --record FILE.
    let file = dir.path().join("rec.json");
    std::fs::write(&file, &input).unwrap();
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--record", file.to_str().unwrap(), "--cmd", "true"]);
    kit::run(cmd).succeeds();
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with(earlier));
    assert!(written.len() < input.len() + 1024, "{}", written.len());
}

#[test]
fn reading_a_record_costs_a_small_multiple_of_its_size() {
    let _serial = kit::serial();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.json");
    std::fs::write(&small, sparse_record(1024)).unwrap();
    let large = dir.path().join("large.json");
    let size = 15 * MIB;
    std::fs::write(&large, sparse_record(size)).unwrap();

    let (out, baseline) = peak_reading(&small);
    out.succeeds();
    let (out, peak) = peak_reading(&large);
    out.succeeds();
    assert!(out.stdout.len() < size + 1024, "{}", out.stdout.len());
    // The text, an index entry per step, the text written out: well under 5 times the size
    // (the steps are as small as steps get; it was 100 times).
    let cost = peak.saturating_sub(baseline);
    assert!(
        cost < 5 * size,
        "reading {} MiB cost {} MiB (baseline {} MiB)",
        size / MIB,
        cost / MIB,
        baseline / MIB
    );
}
