//! Every example in README.md and in the man pages runs as written. Each is extracted from the
//! documents (`docs`), put on a stage of real services (`docs::stage`, whose table says exactly
//! what is substituted), and run the way an operator runs it: shell lines by bash, Ansible
//! tasks by ansible-playbook, a GitLab job's script by bash reading it on stdin. Each run is
//! checked on what it did (the record, what the service saw), not only on its exit code.
//! An example that names a binary this workspace does not build (a misspelt `ugw-swapp`, a
//! tool not written yet) fails: it would fail for the reader who copies it.

use crate::docs;
use crate::kit;

use docs::stage::{ANSIBLE_HOST, ANSIBLE_VERSION, ENVIRONMENT, SECRET, STAND_INS, Stage};
use docs::{Example, Kind};
use kit::haproxy::{HaProxy, Server};
use kit::nginx::Nginx;
use kit::{DemoApp, Outcome, Record, parse_record};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

/// Shell examples with a test of their own (the setting their point needs), by a string only
/// they contain. Every other shell example runs in
/// `every_documented_example_runs_or_is_listed` and must succeed there.
const OWN_TESTS: &[(&str, &str)] = &[
    // Before "ugw-backup", "ugw-drain" and "ugw-fetch --image": the first key found wins.
    (
        "ugw-swap --compose",
        "compose_example::the_compose_demo_upgrades_web_start_first_under_load_and_the_failure_path_puts_v2_back",
    ),
    (
        "--pidfile /run/app/app.pid",
        "swap_start::the_documented_start_examples_run_as_written",
    ),
    ("/etc/app/smoke.json", "the_whole_pipeline_runs_on_a_stage"),
    ("--successes 2", "ready_then_once_more"),
    ("pg_isready", "a_database_port_and_a_command_stay_passing"),
    ("--fail-if '", "a_failed_start_stops_the_wait_at_once"),
    ("--until-down", "waits_for_the_old_process_to_stop"),
    ("app.internal", "a_secret_header_over_tls"),
    ("make ", "the_project_commands"),
    ("cargo install", "the_project_commands"),
    ("ugw-backup", "backup_examples_run_in_order"),
    ("ugw-drain", "drain_examples_run_in_order"),
    ("smoke.json", "verify_examples_run_in_order"),
    (
        "ugw-fetch --image",
        "fetch_image::the_readme_example_runs_as_written",
    ),
];

/// What `ugw-backup`'s examples name, and what stands in for it (besides [`STAND_INS`]).
const BACKUP_STAND_INS: &[(&str, &str)] = &[
    (
        "/srv/app",
        "a folder in the stage: data/state and app.db, a SQLite database in WAL mode",
    ),
    ("/var/backups/app", "a folder in the stage"),
    ("/tmp/restored", "a folder in the stage"),
];

/// What `ugw-drain`'s examples name, and what stands in for it (besides [`STAND_INS`]).
const DRAIN_STAND_INS: &[(&str, &str)] = &[
    (
        "/run/haproxy/admin.sock",
        "the admin socket of an HAProxy whose backend app has node1 (the demo service, checked)",
    ),
    (
        "tcp:10.0.0.2:9999",
        "tcp:127.0.0.1:PORT: the runtime API of a second such HAProxy",
    ),
    ("/run/app/drain", "a path in the stage"),
    (
        "/run/nginx.pid",
        "the pid file of an nginx started for the example",
    ),
];

/// How long a play or a job may take: ansible-playbook starts a Python per task.
const PLAY_LIMIT: Duration = Duration::from_secs(180);

// ---- what is documented, and what runs ----

#[test]
fn every_documented_example_runs_or_is_listed() {
    let examples = docs::all();
    assert_documents_have_examples(&examples);
    eprintln!("stand-ins: {STAND_INS:#?}\nenvironment: {ENVIRONMENT:#?}");
    for example in distinct(examples) {
        assert_tools_known(&example);
        if let Some((_, test)) = own_test(&example) {
            eprintln!("{}: run by {test}", example.source);
            continue;
        }
        match example.kind {
            Kind::Ansible => eprintln!("{}: run by ansible_tasks_run_in_a_play", example.source),
            Kind::GitLab => eprintln!("{}: run by a_gitlab_job_runs_from_stdin", example.source),
            Kind::Shell => run_as_written(&example),
        }
    }
}

/// A shell example without a test of its own: it succeeds and leaves an ok record.
fn run_as_written(example: &Example) {
    let Some(stage) = Stage::new(example, &[]) else {
        return;
    };
    let out = run_shell(&stage, example);
    out.succeeds();
    let record = record_of(&stage, example, &out);
    assert_all_ok(&record, example);
    assert!(!record.steps.is_empty(), "{}: {record:?}", example.source);
}

#[test]
fn an_example_without_a_test_of_its_own_runs_on_the_stand_ins() {
    let example = |text: &str| Example {
        source: "README.md:1".into(),
        kind: Kind::Shell,
        text: text.into(),
    };
    run_as_written(&example(
        "ugw-wait-healthy --url http://127.0.0.1:8080/health/live --tcp 127.0.0.1:5432\n",
    ));
    run_as_written(&example(
        "mkdir -p /var/lib/ugw && ugw-wait-healthy --record /var/lib/ugw/r.json --new \\\n  \
         --url \"$APP_URL/health/ready\" > /dev/null\n",
    ));
}

/// The extraction finds what the documents hold: a change that hid examples from it (a new
/// fence language, a renamed section) fails here instead of passing with nothing run.
fn assert_documents_have_examples(examples: &[Example]) {
    let from = |file: &str, kind: Kind| {
        examples
            .iter()
            .filter(|e| e.source.starts_with(&format!("{file}:")) && e.kind == kind)
            .count()
    };
    assert!(from("README.md", Kind::Shell) >= 8, "{examples:#?}");
    assert_eq!(from("README.md", Kind::Ansible), 1, "{examples:#?}");
    assert_eq!(from("README.md", Kind::GitLab), 1, "{examples:#?}");
    assert!(
        from("man/ugw-wait-healthy.1", Kind::Shell) >= 5,
        "{examples:#?}"
    );
    assert!(from("man/ugw.7", Kind::Shell) >= 1, "{examples:#?}");
    assert_eq!(from("man/ugw.7", Kind::Ansible), 1, "{examples:#?}");
    assert_eq!(from("man/ugw.7", Kind::GitLab), 1, "{examples:#?}");
}

#[test]
fn examples_are_extracted_as_a_reader_sees_them() {
    let readme = docs::readme(
        "text\n```sh\na --x \\\n  --y\nb | c\nset -o pipefail\nd \\\n | e\n\n# note\nf # why\n```\n\
         ```yaml\n- name: t\n  x: y\n```\n```text\nnot run\n```\n",
    );
    let texts: Vec<(&str, &str)> = readme
        .iter()
        .map(|e| (e.source.as_str(), e.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("README.md:3", "a --x \\\n  --y\n"),
            ("README.md:5", "b | c\n"),
            ("README.md:6", "set -o pipefail\nd \\\n | e\n"),
            ("README.md:11", "f # why\n"),
            ("README.md:14", "- name: t\n  x: y\n"),
        ]
    );
    assert_eq!(readme[4].kind, Kind::Ansible);
    let page = ".SH OPTIONS\n.EX\nnot this\n.EE\n.SH EXAMPLES\n.PP\nSay:\n.RS 4\n.EX\n\
                ugw\\-x \\-\\-expect \\(aq.a == \"b\"\\(aq \\[u2026]\n.EE\n.RE\n.SH FILES\n";
    let man = docs::man_page("man/x.1", page);
    assert_eq!(man.len(), 1, "{man:?}");
    assert_eq!(man[0].source, "man/x.1:10");
    assert_eq!(man[0].text, "ugw-x --expect '.a == \"b\"' \u{2026}\n");
    assert_eq!(man[0].tools(), ["ugw-x"]);
    let tools = Example {
        text: "ugw-fetch --dest /var/lib/ugw-data | ugw-swap; make install # ugw-*.1".into(),
        ..man[0].clone()
    };
    assert_eq!(tools.tools(), ["ugw-fetch", "ugw-swap"]);
}

#[test]
fn gitlab_script_lines_fold_as_yaml_does() {
    let jobs = docs::gitlab_scripts(
        "stages: [a]\ndefault:\n  tags: [x]\njob:\n  stage: a\n  script:\n    # a comment\n    - one --a\n      --b 'c d'\n    - two\n  artifacts:\n    paths: [f]\n",
    );
    assert_eq!(
        jobs,
        [(
            "job".to_string(),
            vec!["one --a --b 'c d'".to_string(), "two".to_string()]
        )]
    );
}

// ---- shell examples with a point of their own ----

#[test]
fn ready_then_once_more() {
    for example in runnable_examples_with("--successes 2") {
        let Some(stage) = Stage::new(&example, &[]) else {
            continue;
        };
        let out = run_shell(&stage, &example);
        out.succeeds();
        let step = out.last_step();
        assert_eq!(
            (step.tool.as_str(), step.status.as_str()),
            ("ugw-wait-healthy", "ok")
        );
        let result = step.wait_result();
        assert!(result.healthy, "{result:?}");
        assert_eq!(
            (result.rounds, result.targets[0].passes),
            (2, 2),
            "{result:?}"
        );
        assert_eq!(result.targets[0].last_status, Some(200));
        assert_eq!(stage.demo().requests_settled(), 2, "two requests, no more");
    }
}

#[test]
fn a_database_port_and_a_command_stay_passing() {
    for example in runnable_examples_with("pg_isready") {
        let Some(stage) = Stage::new(&example, &[]) else {
            continue;
        };
        let out = run_shell(&stage, &example);
        out.succeeds();
        let result = out.wait_result();
        assert!(result.healthy, "{result:?}");
        let kinds: Vec<&str> = result.targets.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(kinds, ["tcp", "cmd"], "{result:?}");
        assert!(result.targets.iter().all(|t| t.passing), "{result:?}");
        assert_eq!(result.targets[1].last_exit, Some(0), "{result:?}");
        assert!(result.elapsed_ms >= 10_000, "stable for 10 s: {result:?}");
        let startups = stage.postgres.as_ref().unwrap().startups();
        assert!(
            startups as u64 >= result.targets[1].passes,
            "every passing pg_isready asked the stand-in: {startups} startups, {result:?}"
        );
    }
}

#[test]
fn a_failed_start_stops_the_wait_at_once() {
    for example in runnable_examples_with("--fail-if '") {
        // A healthy service passes...
        let Some(stage) = Stage::new(&example, &[]) else {
            continue;
        };
        let out = run_shell(&stage, &example);
        out.succeeds();
        assert!(out.wait_result().healthy);
        // ...and one that reports a failed start, after one "starting", stops it at once.
        let failing = ["--fail-first", "1", "--status-field", "failed"];
        let Some(stage) = Stage::new(&example, &failing) else {
            continue;
        };
        let out = run_shell(&stage, &example);
        out.assert_code(1);
        let step = out.last_step();
        assert_eq!(step.error_kind(), "fail_condition", "{step:?}");
        assert_eq!(step.wait_result().rounds, 2, "{step:?}");
        let demo = stage.demo6.as_ref().unwrap_or_else(|| stage.demo());
        assert_eq!(
            demo.requests_settled(),
            2,
            "no request after the failed one"
        );
    }
}

#[test]
fn waits_for_the_old_process_to_stop() {
    for example in runnable_examples_with("--until-down") {
        let Some(mut stage) = Stage::new(&example, &[]) else {
            continue;
        };
        stage.describe(&example);
        let mut tool = stage.command("bash");
        tool.arg("-c")
            .arg(stage.substitute(&example.text))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = tool.spawn().unwrap();
        // Stop the service only once the tool has seen it up: its first word on the target.
        let target = stage.demo().addr();
        let stderr = child.stderr.take().unwrap();
        let (lines, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut seen = Vec::new();
        while !seen
            .iter()
            .any(|l: &String| l.contains(&target) && !l.contains("waiting"))
        {
            let line = said
                .recv_timeout(kit::RUN_LIMIT)
                .unwrap_or_else(|_| panic!("the tool said nothing about {target}: {seen:?}"));
            seen.push(line);
        }
        stage.demo.as_mut().unwrap().terminate();
        let output = kit::wait_bounded(child, kit::RUN_LIMIT);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{seen:?}");
        let step = parse_record(&stdout).steps.pop().unwrap();
        let result = step.wait_result();
        assert_eq!((step.status.as_str(), result.mode.as_str()), ("ok", "down"));
        assert!(result.healthy, "{result:?}");
        assert!(
            result.rounds >= 2,
            "it saw the service up, then down: {result:?}"
        );
    }
}

#[test]
fn a_secret_header_over_tls() {
    for example in runnable_examples_with("app.internal") {
        let Some(stage) = Stage::new(&example, &[]) else {
            continue;
        };
        let out = run_shell(&stage, &example);
        out.succeeds();
        let result = out.wait_result();
        assert!(result.healthy, "{result:?}");
        let target = &result.targets[0];
        assert!(
            target.target.starts_with("https://127.0.0.1:"),
            "{target:?}"
        );
        assert_eq!(target.last_status, Some(200), "{target:?}");
        assert_eq!(stage.tls.as_ref().unwrap().requests_settled(), 1);
        assert_no_secret(&[&out.stdout, &out.stderr]);
    }
}

/// The README's own commands. `make demo` runs for real in tests/it/demo.rs (the demo is long
/// enough to run once); `make test` is this very run and `make install` needs root and a
/// release build, so make shows what these would do (`make -n`), and `cargo install --path .`
/// is checked to name a package with the tools' binaries.
#[test]
fn the_project_commands() {
    let examples: Vec<Example> = docs::all()
        .into_iter()
        .filter(|e| own_test(e).is_some_and(|(_, test)| test == "the_project_commands"))
        .collect();
    assert!(examples.len() >= 4, "{examples:#?}");
    for example in distinct(examples) {
        let command = example.text.split('#').next().unwrap().trim();
        eprintln!("{}: {command}", example.source);
        let words: Vec<&str> = command.split_whitespace().collect();
        let program = match words[0] {
            "cargo" => std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            other => other.to_string(),
        };
        let mut cmd = std::process::Command::new(program);
        // Not the jobserver of the `make test` running this.
        cmd.current_dir(docs::root())
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL")
            .stdin(Stdio::null());
        let expected: &[&str] = match words.as_slice() {
            // tests/it/demo.rs runs the demo itself and checks what it did.
            ["make", "demo"] => {
                cmd.args(["-n", "demo"]);
                &["cargo build --workspace --locked", "bash examples/demo.sh"]
            }
            ["make", "test"] => {
                cmd.args(["-n", "test"]);
                &["cargo test --workspace --locked", "passed"]
            }
            ["make", "install", prefix] => {
                cmd.args(["-n", "install", prefix]);
                &[
                    "/usr/local/bin/$t",
                    "/usr/local/share/man/man7",
                    "bash-completion",
                ]
            }
            ["cargo", "install", "--path", "."] => {
                cmd.args([
                    "metadata",
                    "--no-deps",
                    "--offline",
                    "--format-version",
                    "1",
                ]);
                &["\"kind\":[\"bin\"]", "\"name\":\"ugw-wait-healthy\""]
            }
            _ => panic!(
                "{}: a project command this test does not know: {command}",
                example.source
            ),
        };
        let out = kit::run(cmd);
        out.succeeds();
        let said = format!("{}{}", out.stdout, out.stderr);
        for text in expected {
            assert!(said.contains(text), "{command}: no {text:?} in\n{said}");
        }
    }
}

// ---- Ansible and GitLab CI ----

/// Each documented list of tasks, in a play on one host with a local connection (the
/// interpreter is the one running ansible-playbook: discovery finds broken shims). The tasks
/// succeed, the record file holds one ok step per ugw task, written by that host, and Ansible
/// says `changed` exactly when the step says so.
#[test]
fn ansible_tasks_run_in_a_play() {
    let examples: Vec<Example> = docs::all()
        .into_iter()
        .filter(|e| e.kind == Kind::Ansible)
        .collect();
    assert!(!examples.is_empty());
    for example in examples.into_iter().inspect(assert_tools_known) {
        if !kit::require("ansible-playbook") {
            return;
        }
        let Some(stage) = Stage::new(&example, &[]) else {
            continue;
        };
        let out = run_play(&stage, &example);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        let tasks = tasks_of(&example.text);
        let statuses = docs::ansible_task_statuses(&out.stdout, ANSIBLE_HOST);
        assert_eq!(statuses.len(), tasks.len(), "{}", out.stdout);
        let text = stage.substitute(&example.text);
        let record = parse_record(&std::fs::read_to_string(record_file(&stage, &text)).unwrap());
        assert_all_ok(&record, &example);
        let ugw_tasks: Vec<&(String, String)> = statuses
            .iter()
            .zip(&tasks)
            .filter(|(_, task)| task.contains("--record"))
            .map(|(status, _)| status)
            .collect();
        assert_eq!(ugw_tasks.len(), record.steps.len(), "one step per task");
        for ((task, status), step) in ugw_tasks.into_iter().zip(&record.steps) {
            assert_eq!(step.host, ANSIBLE_HOST, "UGW_HOST_ID from the inventory");
            let expected = if step.changed { "changed" } else { "ok" };
            assert_eq!(status, expected, "{task}: {step:?}");
        }
    }
}

/// Each job's `script:` fed to bash on stdin as a GitLab runner does (`set -eo pipefail`
/// first), with a last line of the test's own that must still run: the tools did not eat
/// the script. The pipe stays open while the shell runs (a tool that waited on it would
/// hang), so the script ends with `exit`. The jobs run one after another in one folder, as artifacts carry the record.
#[test]
fn a_gitlab_job_runs_from_stdin() {
    let examples: Vec<Example> = docs::all()
        .into_iter()
        .filter(|e| e.kind == Kind::GitLab)
        .collect();
    assert!(!examples.is_empty());
    for example in examples.into_iter().inspect(assert_tools_known) {
        let Some(stage) = Stage::new(&example, &[]) else {
            continue;
        };
        stage.describe(&example);
        let text = stage.substitute(&example.text);
        let jobs = docs::gitlab_scripts(&text);
        assert!(
            !jobs.is_empty(),
            "no job with a script in {}",
            example.source
        );
        for (job, lines) in &jobs {
            let script = format!(
                "set -eo pipefail\n{}\necho went on > {job}.done\nexit 0\n",
                lines.join("\n")
            );
            let out = kit::script_on_stdin(stage.command("bash"), &script, stage.dir.path());
            assert_eq!(out.code, 0, "{job}: {script}\n{}", out.stderr);
            assert!(
                stage.dir.path().join(format!("{job}.done")).exists(),
                "{job}: the line after the tools ran\n{}",
                out.stderr
            );
            assert_no_secret(&[&out.stdout, &out.stderr]);
        }
        let file = record_file(&stage, &text);
        let saved = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains(&format!(
                "paths: [{}]",
                file.file_name().unwrap().to_string_lossy()
            )),
            "the record is the job's artifact"
        );
        let record = parse_record(&saved);
        assert_all_ok(&record, &example);
        let ugw_lines = jobs
            .iter()
            .flat_map(|(_, l)| l)
            .filter(|l| l.contains("--record"));
        assert_eq!(record.steps.len(), ugw_lines.count(), "one step per line");
        assert_no_secret(&[&saved]);
    }
}

// ---- helpers ----

/// The test an example has of its own, if any.
fn own_test(example: &Example) -> Option<(&'static str, &'static str)> {
    let shell = example.kind == Kind::Shell;
    OWN_TESTS
        .iter()
        .copied()
        .find(|(key, _)| shell && example.text.contains(key))
}

/// Every ugw binary the example runs is one this workspace builds: a misspelt name or a tool
/// not written yet fails the test instead of the example being skipped.
#[track_caller]
fn assert_tools_known(example: &Example) {
    let unknown = example.unknown_tools();
    assert!(
        unknown.is_empty(),
        "{}: names {} which this workspace does not build (it builds {:?})",
        example.source,
        unknown.join(", "),
        docs::known_binaries()
    );
}

#[test]
fn an_example_naming_an_unknown_binary_fails() {
    let misspelt = Example {
        source: "README.md:1".into(),
        kind: Kind::Shell,
        text: "ugw-fetch --url \"$URL\" | ugw-swapp --root /srv/app --from -\n".into(),
    };
    assert_eq!(misspelt.unknown_tools(), ["ugw-swapp"]);
    let refused = std::panic::catch_unwind(|| assert_tools_known(&misspelt));
    assert!(refused.is_err(), "an example naming ugw-swapp must fail");
    // Every tool the workspace builds is known, and so is every one README.md and the man
    // pages name.
    for tool in docs::known_binaries() {
        let example = Example {
            text: format!("{tool} --help\n"),
            ..misspelt.clone()
        };
        assert_tools_known(&example);
    }
    let documented = docs::all();
    assert!(
        documented
            .iter()
            .any(|e| e.source.starts_with("README.md:"))
    );
    documented.iter().for_each(assert_tools_known);
}

/// `ugw-backup`'s examples, in their order, on one stage: each reads the record file the one
/// before it wrote, as an operator's shell session would.
#[test]
fn backup_examples_run_in_order() {
    let examples = runnable_examples_with("ugw-backup");
    let Some(first) = examples.first() else {
        return;
    };
    let Some(stage) = Stage::new(first, &[]) else {
        return;
    };
    eprintln!("backup stand-ins: {BACKUP_STAND_INS:#?}");
    let root = stage.dir.path();
    let app = root.join("srv/app");
    std::fs::create_dir_all(app.join("data")).unwrap();
    std::fs::write(app.join("data/state"), "backed up\n").unwrap();
    let db = rusqlite::Connection::open(app.join("app.db")).unwrap();
    db.pragma_update(None, "journal_mode", "WAL").unwrap();
    db.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let place = |text: &str| {
        stage
            .substitute(text)
            .replace("/srv/app", &app.display().to_string())
            .replace(
                "/var/backups/app",
                &root.join("backups").display().to_string(),
            )
            .replace(
                "/tmp/restored",
                &root.join("restored").display().to_string(),
            )
    };
    for example in &examples {
        stage.describe(example);
        if example.text.contains("--in-place") {
            // What the restore must undo.
            std::fs::write(app.join("data/state"), "changed\n").unwrap();
            db.execute_batch("INSERT INTO t VALUES (3);").unwrap();
        }
        let mut bash = stage.command("bash");
        bash.arg("-c").arg(place(&example.text));
        kit::run(bash).succeeds();
    }
    assert_eq!(
        std::fs::read_to_string(app.join("data/state")).unwrap(),
        "backed up\n"
    );
    let rows: i64 = db
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "the open connection sees the backed-up rows");
    let restored = root
        .join("restored")
        .join(app.strip_prefix("/").unwrap())
        .join("data/state");
    assert_eq!(std::fs::read_to_string(restored).unwrap(), "backed up\n");
}

/// What the whole pipeline (DESIGN's, in ugw(7)) names, and what stands in for it (besides
/// [`STAND_INS`]).
const PIPELINE_STAND_INS: &[(&str, &str)] = &[
    (
        "/var/lib/app/uploads",
        "a folder in the stage with one file",
    ),
    ("--out /backup", "a folder in the stage"),
    (
        "/run/haproxy/admin.sock",
        "the admin socket of an HAProxy whose backend app has the demo service as node1, \
         health-checked",
    ),
    (
        "/etc/app/smoke.json",
        "checks for the demo service: ready with the fetched version, an item created, read \
         back and deleted",
    ),
];

/// The whole upgrade pipeline as the contract shows it, on one stage: a backup, the release
/// fetched from `$BASE`, migrated, the node drained in HAProxy, swapped, healthy with the new
/// version, back in traffic, and verified. Each step is checked in the record it leaves, and
/// HAProxy must have the node UP again at the end.
#[test]
fn the_whole_pipeline_runs_on_a_stage() {
    let examples = runnable_examples_with("/etc/app/smoke.json");
    if examples.is_empty() || !HaProxy::available() {
        return;
    }
    eprintln!("pipeline stand-ins: {PIPELINE_STAND_INS:#?}");
    for example in &examples {
        run_the_whole_pipeline(example);
    }
}

fn run_the_whole_pipeline(example: &Example) {
    let Some(stage) = Stage::new(example, &[]) else {
        return;
    };
    let root = stage.dir.path();
    let uploads = root.join("var/lib/app/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("avatar.png"), "not really a png\n").unwrap();
    let demo = stage.demo();
    let haproxy = HaProxy::start(&[Server::new("node1", &demo.addr(), true)]);
    assert!(
        haproxy.wait_status("node1", "UP", Duration::from_secs(5)),
        "{}",
        haproxy.log()
    );
    let url = &demo.url;
    let smoke = serde_json::json!({"checks": [
        {"name": "ready", "type": "http", "url": format!("{url}/health/ready"),
         "expect": [format!(".version == \"{ANSIBLE_VERSION}\"")]},
        {"name": "create", "type": "http", "method": "POST", "url": format!("{url}/items"),
         "body": {"name": "smoke"}, "status": 201, "capture": {"item": ".id"}},
        {"name": "read", "type": "http", "url": format!("{url}/items/${{capture:item}}"),
         "expect": [".name == \"smoke\""]},
        {"name": "delete", "type": "http", "method": "DELETE",
         "url": format!("{url}/items/${{capture:item}}"), "after": ["read"], "always": true},
    ]});
    std::fs::write(root.join("smoke.json"), smoke.to_string()).unwrap();
    let text = stage
        .substitute(&example.text)
        .replace("/var/lib/app/uploads", uploads.to_str().unwrap())
        .replace(
            "--out /backup",
            &format!("--out {}", root.join("backup").display()),
        )
        .replace(
            "/run/haproxy/admin.sock",
            haproxy.admin_socket().to_str().unwrap(),
        )
        .replace(
            "/etc/app/smoke.json",
            root.join("smoke.json").to_str().unwrap(),
        );
    stage.describe(example);
    let mut bash = stage.command("bash");
    bash.arg("-c").arg(format!("set -o pipefail\n{text}"));
    let out = kit::run(bash);
    out.succeeds();
    let record = parse_record(&std::fs::read_to_string(root.join("upgrade-record.json")).unwrap());
    assert_all_ok(&record, example);
    let tools: Vec<&str> = record.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(
        tools,
        [
            "ugw-backup",
            "ugw-fetch",
            "ugw-migrate",
            "ugw-drain",
            "ugw-swap",
            "ugw-wait-healthy",
            "ugw-drain",
            "ugw-verify",
        ],
        "{record:#?}"
    );
    let step = |i: usize| &record.steps[i].result;
    assert_eq!(step(3)["state_before"], "ready", "{:#}", step(3));
    assert_eq!(step(3)["state_after"], "drain", "{:#}", step(3));
    assert_eq!(step(6)["undo"], true, "{:#}", step(6));
    assert_eq!(step(7)["failed"], serde_json::json!([]), "{:#}", step(7));
    assert_eq!(step(7)["passed"], 4, "{:#}", step(7));
    assert_eq!(haproxy.status("node1"), "UP");
    assert!(
        std::fs::read_link(root.join("opt/app/current"))
            .unwrap()
            .ends_with(ANSIBLE_VERSION),
        "current is the fetched release"
    );
    assert!(demo.log().contains("DELETE /items/"), "{}", demo.log());
}

/// `ugw-drain`'s examples, in their order, on one stage of two HAProxy instances, the demo
/// service and nginx: the undo reads the record the drain wrote.
#[test]
fn drain_examples_run_in_order() {
    // A whole pipeline (with ugw-backup) is the backup test's.
    let examples: Vec<Example> = runnable_examples_with("ugw-drain --")
        .into_iter()
        .filter(|e| own_test(e).is_some_and(|(_, test)| test == "drain_examples_run_in_order"))
        .collect();
    let Some(first) = examples.first() else {
        return;
    };
    if !(HaProxy::available() && Nginx::available()) {
        return;
    }
    // One stage for them all, with what any of them names.
    let all = Example {
        text: examples.iter().map(|e| e.text.as_str()).collect(),
        ..first.clone()
    };
    let Some(stage) = Stage::new(&all, &[]) else {
        return;
    };
    eprintln!("drain stand-ins: {DRAIN_STAND_INS:#?}");
    let node1 = DemoApp::start(&[]);
    let servers = [Server::new("node1", &node1.addr(), true)];
    let a = HaProxy::start(&servers);
    let b = HaProxy::start_with(
        &servers,
        &kit::haproxy::Options {
            tcp_socket: true,
            ..kit::haproxy::Options::default()
        },
    );
    let mut nginx = Nginx::start(None);
    let root = stage.dir.path();
    let flag = root.join("run-app-drain");
    let pidfile = nginx.pidfile();
    let place = |text: &str| {
        stage
            .substitute(text)
            .replace(
                "/run/haproxy/admin.sock",
                a.admin_socket().to_str().unwrap(),
            )
            .replace(
                "tcp:10.0.0.2:9999",
                &format!("tcp:127.0.0.1:{}", b.api_port.unwrap()),
            )
            .replace("/run/app/drain", flag.to_str().unwrap())
            .replace("/run/nginx.pid", pidfile.to_str().unwrap())
    };
    for h in [&a, &b] {
        assert!(
            h.wait_status("node1", "UP", Duration::from_secs(5)),
            "{}",
            h.log()
        );
    }
    for example in &examples {
        stage.describe(example);
        let mut bash = stage.command("bash");
        bash.arg("-c").arg(place(&example.text));
        let out = kit::run(bash);
        out.succeeds();
        let text = &example.text;
        if text.contains("--undo") {
            assert_eq!(a.status("node1"), "UP", "{}", example.source);
        } else if text.contains("--haproxy") {
            assert_eq!(a.status("node1"), "DRAIN", "{}", example.source);
        } else if text.contains("--flag-file") {
            assert!(flag.exists(), "{}", example.source);
        } else if text.contains("--signal") {
            assert!(
                nginx.wait_exit(Duration::from_secs(1)).is_some(),
                "{}",
                example.source
            );
        }
    }
    assert_eq!(b.status("node1"), "DRAIN");
}

/// `ugw-verify`'s examples with a checks file, in their order, on one stage: a smoke.json
/// written for the demo service there (ready, an item created, read back and deleted, the
/// service's own metrics measured), a baseline taken, then compared with.
#[test]
fn verify_examples_run_in_order() {
    let examples = runnable_examples_with("smoke.json");
    let Some(first) = examples.first() else {
        return;
    };
    let Some(stage) = Stage::new(first, &[]) else {
        return;
    };
    let demo = kit::DemoApp::start(&[]);
    let url = &demo.url;
    let smoke = serde_json::json!({"checks": [
        {"name": "ready", "type": "http", "url": format!("{url}/health/ready"), "expect": [".status == \"ok\""]},
        {"name": "create", "type": "http", "method": "POST", "url": format!("{url}/items"),
         "body": {"name": "smoke"}, "status": 201, "capture": {"item": ".id"}},
        {"name": "read", "type": "http", "url": format!("{url}/items/${{capture:item}}")},
        {"name": "delete", "type": "http", "method": "DELETE", "url": format!("{url}/items/${{capture:item}}"),
         "after": ["read"], "always": true, "status": "2xx"},
        {"name": "server", "type": "metrics", "url": format!("{url}/metrics"), "after": ["delete"],
         "measure": ["latency", "errors", "memory"], "min_samples": 3,
         "assert": ["process_resident_memory_bytes <= 512MiB"]},
    ]});
    let root = stage.dir.path();
    std::fs::write(root.join("smoke.json"), smoke.to_string()).unwrap();
    eprintln!("verify stand-ins: smoke.json is {smoke:#}");
    for example in &examples {
        let out = run_shell(&stage, example);
        out.succeeds();
        let record = record_of(&stage, example, &out);
        assert_all_ok(&record, example);
        let result = &record.steps.last().unwrap().result;
        assert_eq!(
            result["failed"],
            serde_json::json!([]),
            "{}: {result:#}",
            example.source
        );
        if example.text.contains("--compare") {
            let rows = result["comparison"].as_array().unwrap();
            assert_eq!(rows.len(), 3, "p95, error ratio and memory: {result:#}");
        }
    }
    let junit = std::fs::read_to_string(root.join("verify-junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 5, "{junit}");
    assert!(root.join("baseline.json").exists());
    assert!(
        demo.log().contains("DELETE /items/"),
        "the cleanup ran: {}",
        demo.log()
    );
}

/// The shell examples with `key` (each text once), each naming only known tools. None at all means a document changed
/// under the test: `OWN_TESTS` must follow.
fn runnable_examples_with(key: &str) -> Vec<Example> {
    // An example owned by another test (the whole pipeline names every tool) is that test's.
    let owner = OWN_TESTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, test)| *test);
    let examples: Vec<Example> = docs::all()
        .into_iter()
        .filter(|e| e.kind == Kind::Shell && e.text.contains(key))
        .filter(|e| owner.is_none() || own_test(e).map(|(_, test)| test) == owner)
        .collect();
    assert!(
        !examples.is_empty(),
        "no documented example has {key:?}: update OWN_TESTS"
    );
    let examples = distinct(examples);
    examples.iter().for_each(assert_tools_known);
    examples
}

/// Each text once, with every place it is documented in its source.
fn distinct(examples: Vec<Example>) -> Vec<Example> {
    let mut unique: Vec<Example> = Vec::new();
    for example in examples {
        match unique.iter_mut().find(|u| u.text == example.text) {
            Some(first) => first.source = format!("{}, {}", first.source, example.source),
            None => unique.push(example),
        }
    }
    unique
}

fn run_shell(stage: &Stage, example: &Example) -> Outcome {
    stage.describe(example);
    let mut bash = stage.command("bash");
    bash.arg("-c").arg(stage.substitute(&example.text));
    kit::run(bash)
}

/// ansible-playbook on the example's tasks, in a play with the variables they use.
fn run_play(stage: &Stage, example: &Example) -> Outcome {
    stage.describe(example);
    let dir = stage.dir.path();
    let inventory = format!(
        "all:\n  hosts:\n    {ANSIBLE_HOST}:\n      ansible_connection: local\n      \
         ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n"
    );
    let base_url = match (&stage.releases, &stage.demo) {
        (Some(releases), _) => releases.url("").trim_end_matches('/').to_string(),
        (None, Some(demo)) => demo.url.clone(),
        (None, None) => String::new(),
    };
    let mut tasks = String::new();
    for line in stage.substitute(&example.text).lines() {
        tasks.push_str("    ");
        tasks.push_str(line);
        tasks.push('\n');
    }
    let play = format!(
        "- hosts: {ANSIBLE_HOST}\n  gather_facts: false\n  vars:\n    app_version: {ANSIBLE_VERSION}\n    \
         version: {ANSIBLE_VERSION}\n    base_url: \"{base_url}\"\n  tasks:\n{tasks}"
    );
    std::fs::write(dir.join("inventory.yml"), inventory).unwrap();
    std::fs::write(dir.join("play.yml"), &play).unwrap();
    eprintln!("play.yml:\n{play}");
    let mut cmd = stage.command("ansible-playbook");
    cmd.args(["-i", "inventory.yml", "play.yml"])
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", dir.join("ansible-tmp"));
    kit::run_within(cmd, PLAY_LIMIT)
}

/// The tasks of an Ansible task list, each as its text.
fn tasks_of(yaml: &str) -> Vec<String> {
    let mut tasks: Vec<String> = Vec::new();
    for line in yaml.lines() {
        if line.starts_with("- ") {
            tasks.push(String::new());
        }
        if let Some(task) = tasks.last_mut() {
            task.push_str(line);
            task.push('\n');
        }
    }
    tasks
}

/// The `--record FILE` an example names (every ugw line of one example names the same).
fn record_file(stage: &Stage, text: &str) -> std::path::PathBuf {
    let (_, after) = text
        .split_once("--record ")
        .expect("the example keeps a record file");
    let name = after.split_whitespace().next().unwrap();
    stage.dir.path().join(name)
}

/// The record a shell example leaves: its `--record` file, else the last line of stdout. An
/// example that leaves neither needs a test of its own saying what it shows.
fn record_of(stage: &Stage, example: &Example, out: &Outcome) -> Record {
    let text = stage.substitute(&example.text);
    if text.contains("--record ") {
        return parse_record(&std::fs::read_to_string(record_file(stage, &text)).unwrap());
    }
    let last = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "{}: no record on stdout ({e}): give it a test of its own in OWN_TESTS\n{}",
            example.source, out.stdout
        )
    })
}

#[track_caller]
fn assert_all_ok(record: &Record, example: &Example) {
    assert!(record.ok, "{}: {record:#?}", example.source);
    for step in &record.steps {
        assert_eq!(step.status, "ok", "{}: {step:#?}", example.source);
    }
}

#[track_caller]
fn assert_no_secret(texts: &[&str]) {
    let token = SECRET.split_whitespace().last().unwrap();
    for text in texts {
        assert!(!text.contains(token), "the secret leaked: {text}");
    }
}
