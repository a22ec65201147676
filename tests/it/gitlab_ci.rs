//! The GitLab CI template (`examples/gitlab-ci/`) run for real against a demo node behind
//! HAProxy (`examples/lib/fleet.sh`): by gitlab-ci-local with the shell executor and isolated
//! builds (so the record really travels between jobs as an artifact), and each job's script
//! fed to bash on stdin as GitLab's runners do (the tools must not eat the rest of the
//! script). The files are checked against GitLab's CI schema, `resource_group` included.

use crate::kit;

use kit::fleet::{Fleet, UPGRADE, tools};
use kit::{Outcome, Record};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a pipeline may take (gitlab-ci-local copies the project for each job).
const PIPELINE_LIMIT: Duration = Duration::from_secs(120);
const TEMPLATE: &str = "ugw-upgrade.gitlab-ci.yml";

#[test]
fn the_pipeline_upgrades_the_node_and_passes_the_record_between_jobs() {
    if !components(&["gitlab-ci-local", "rsync", "git"]) {
        return;
    }
    let fleet = Fleet::up(1);
    let repo = Repo::new();
    let out = repo.pipeline(&fleet, &[], &["ugw-post-deploy"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for job in ["ugw-backup", "ugw-deploy", "ugw-verify", "ugw-post-deploy"] {
        out.stdout_has(format!("PASS  {job}"));
    }
    out.stdout_lacks("ugw-rollback ");

    // The last job's record holds every job's steps: each job ran in a copy of its own
    // (--shell-isolation) and got the record as the artifact of the job before.
    let record = repo.artifact_record("ugw-post-deploy");
    assert!(record.ok, "{record:#?}");
    assert_eq!(tools(&record), [&UPGRADE[..], &["ugw-migrate"]].concat());
    assert!(record.steps.iter().all(|s| s.host == "node1"));
    assert_eq!(record.steps[9].result["phase"], "post");
    assert_eq!(fleet.schema(1), ["items(id, name, note)"]);
    assert_eq!(record.steps[2].result["version"], "v2.0.0");
    let junit = std::fs::read_to_string(repo.build("ugw-verify").join("ugw-verify.xml")).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
    assert_eq!(fleet.current(1), "v2.0.0");
    assert!(fleet.answer(1).contains(r#""version":"v2.0.0""#));
    assert_eq!(fleet.settled_haproxy_status("app/node1", "UP"), "UP");
}

#[test]
fn a_failed_deploy_runs_the_rollback_job_with_the_failed_record() {
    if !components(&["gitlab-ci-local", "rsync", "git"]) {
        return;
    }
    let fleet = Fleet::up(1);
    let repo = Repo::new();
    let out = repo.pipeline(
        &fleet,
        &["APP_VERSION=v3.0.0", "UGW_HEALTH_TIMEOUT=3s"],
        &[],
    );
    assert_ne!(out.code, 0, "{}", out.stdout);
    // The verify job did not run.
    out.stdout_has("FAIL  ugw-deploy")
        .stdout_has("PASS  ugw-rollback ")
        .stdout_lacks("ugw-verify  ");

    let record = repo.artifact_record("ugw-rollback");
    kit::fleet::assert_rolled_back(&fleet, 1, &record);
}

#[test]
fn the_jobs_run_from_bash_on_stdin_and_the_manual_rollback_goes_back() {
    if !components(&["python3"]) {
        return;
    }
    let names: Vec<String> = jobs().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "ugw-backup",
            "ugw-deploy",
            "ugw-rollback",
            "ugw-rollback-manual",
            "ugw-verify",
            "ugw-post-deploy",
        ]
    );
    // The good release: backup, deploy, verify, one after the other in one project folder.
    let fleet = Fleet::up(1);
    let project = tempfile::tempdir().unwrap();
    let jobs = [("ugw-backup", 0), ("ugw-deploy", 0), ("ugw-verify", 0)];
    let record = run_jobs(&fleet, project.path(), &jobs, "v2.0.0");
    assert!(record.ok, "{record:#?}");
    assert_eq!(tools(&record), UPGRADE);
    assert_eq!(fleet.current(1), "v2.0.0");

    // The button: out of traffic, back to v1, healthy, back in; the data stays as v2 left it.
    let record = run_jobs(
        &fleet,
        project.path(),
        &[("ugw-rollback-manual", 0)],
        "v2.0.0",
    );
    assert!(record.ok, "{record:#?}");
    assert_eq!(
        tools(&record)[9..],
        ["ugw-drain", "ugw-swap", "ugw-wait-healthy", "ugw-drain"]
    );
    assert_eq!(record.steps[10].result["current"], "v1.0.0");
    assert_eq!(record.steps[12].result["undo"], true);
    assert_eq!(fleet.current(1), "v1.0.0");
    assert_eq!(
        fleet.schema(1),
        ["items(id, name, note)", "legacy_sessions(id, token)"]
    );
    assert_eq!(fleet.settled_haproxy_status("app/node1", "UP"), "UP");
}

#[test]
fn a_failed_deploy_from_bash_on_stdin_is_rolled_back_by_the_rollback_job() {
    if !components(&["python3"]) {
        return;
    }
    let fleet = Fleet::up(1);
    let project = tempfile::tempdir().unwrap();
    let jobs = [("ugw-backup", 0), ("ugw-deploy", 1), ("ugw-rollback", 0)];
    let record = run_jobs(&fleet, project.path(), &jobs, "v3.0.0");
    assert!(!project.path().join("ugw-deploy.done").exists());
    kit::fleet::assert_rolled_back(&fleet, 1, &record);
}

/// A release whose process dies two seconds after its start (after ugw-swap's `--alive-for`,
/// so the swap counts the start): the deploy's wait watches `APP_PIDFILE` and fails at once
/// with `process_exited`, long before `UGW_HEALTH_TIMEOUT`, and the rollback job goes back.
#[test]
fn a_release_that_dies_after_its_start_fails_the_deploy_wait_at_once() {
    if !components(&["python3"]) {
        return;
    }
    let fleet = Fleet::up(1);
    let project = tempfile::tempdir().unwrap();
    let dying = format!(
        "grep -q v3.0.0 bin/app && {{ sleep 2; exit 3; }}; {}",
        fleet.start_command(1)
    );
    let extra = [
        ("APP_START", dying),
        ("UGW_HEALTH_TIMEOUT", "1m".to_string()),
    ];
    let jobs = [("ugw-backup", 0), ("ugw-deploy", 1), ("ugw-rollback", 0)];
    let record = run_jobs_with(&fleet, project.path(), &jobs, "v3.0.0", &extra);
    assert_eq!(
        kit::fleet::statuses(&record)[5..],
        [
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
        ],
        "{record:#?}"
    );
    let wait = &record.steps[6];
    assert_eq!(wait.error_kind(), "process_exited", "{wait:#?}");
    assert!(wait.elapsed_ms < 30_000, "{wait:#?}");
    assert_eq!(record.steps[7].result["current"], "v1.0.0");
    assert_eq!(fleet.current(1), "v1.0.0");
    assert!(fleet.answer(1).contains(r#""version":"v1.0.0""#));
}

#[test]
fn a_release_that_cannot_be_fetched_is_not_rolled_back_past_the_running_one() {
    if !components(&["python3"]) {
        return;
    }
    // The deploy swapped nothing, so the rollback job switches nothing: a rollback would go
    // to the release before the running one.
    let fleet = Fleet::up(1);
    let pid = fleet.pid(1);
    let project = tempfile::tempdir().unwrap();
    let jobs = [("ugw-backup", 0), ("ugw-deploy", 1), ("ugw-rollback", 0)];
    let record = run_jobs(&fleet, project.path(), &jobs, "v9.9.9");
    assert_eq!(
        tools(&record)[2..],
        ["ugw-fetch", "ugw-backup", "ugw-wait-healthy"]
    );
    assert_eq!(record.steps[2].status, "failed");
    assert_eq!(fleet.current(1), "v1.0.0");
    assert_eq!(fleet.pid(1), pid, "restarted");
}

/// How the template's swap and rollback lines restart the service: `--restart
/// "$APP_RESTART"` (systemd) unless `APP_START` is set, which makes ugw-swap the service
/// manager (`--start "$APP_START" --pidfile "$APP_PIDFILE"`, and `--log "$APP_LOG"` only when
/// that is set: ugw-swap's default log beside the pidfile otherwise). Run by the template's own
/// `before_script` in bash, with the real ugw-swap, on a releases root of its own.
#[test]
fn the_swap_lines_restart_with_app_restart_unless_app_start_is_set() {
    if !kit::require("python3") || !python_yaml() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    let run = dir.path().join("run");
    for folder in [&root, &run] {
        std::fs::create_dir_all(folder).unwrap();
    }
    let pidfile = run.join("app.pid");
    let _service = KillOnDrop(pidfile.clone());
    let restarted = dir.path().join("restarted");
    let restart = format!(
        "readlink '{}' > '{}'",
        kit::s(&root.join("current")),
        kit::s(&restarted)
    );
    let swap = |release: &str, start: &str, log: &str| -> Record {
        let from = dir.path().join("staging").join(release);
        std::fs::create_dir_all(&from).unwrap();
        std::fs::write(from.join("VERSION"), release).unwrap();
        let mut bash = Command::new("bash");
        bash.env("APP_RESTART", &restart)
            .env("APP_START", start)
            .env("APP_PIDFILE", &pidfile)
            .env("APP_LOG", log);
        let script = format!(
            "set -eo pipefail\n{}\nugw_swap --in none --root '{}' --from '{}' --release {release} --output json\nexit\n",
            before_script().join("\n"),
            kit::s(&root),
            kit::s(&from),
        );
        let out = kit::script_on_stdin(bash, &script, dir.path());
        assert_eq!(out.code, 0, "{release}: {}", out.stderr);
        let record = out.record();
        assert_eq!(record.steps[0].result["restarted"], true, "{record:#?}");
        record
    };

    // No APP_START: the host's service manager, through APP_RESTART.
    swap("v1", "", "");
    assert_eq!(
        std::fs::read_to_string(&restarted).unwrap().trim(),
        "releases/v1"
    );
    assert!(!pidfile.exists());

    // APP_START: ugw-swap starts the release, detached, in its folder; APP_RESTART is not run;
    // no APP_LOG, so the output goes to the pidfile's .log.
    std::fs::remove_file(&restarted).unwrap();
    swap("v2", "exec sleep 60", "");
    assert!(!restarted.exists(), "APP_RESTART ran as well");
    let v2 = pid_in(&pidfile);
    assert_eq!(
        std::fs::read_link(format!("/proc/{v2}/cwd")).unwrap(),
        root.join("releases/v2")
    );
    assert!(run.join("app.log").exists());

    // APP_LOG set: the output goes there; the release before was stopped.
    let log = dir.path().join("service.log");
    swap("v3", "exec sleep 60", kit::s(&log));
    assert!(kit::gone(v2, Duration::from_secs(5)), "v2 still runs");
    let v3 = pid_in(&pidfile);
    assert_ne!(v3, v2);
    assert_eq!(
        std::fs::read_link(format!("/proc/{v3}/cwd")).unwrap(),
        root.join("releases/v3")
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("exec sleep 60"), "{logged}");
    assert!(!restarted.exists(), "APP_RESTART ran as well");
}

/// The pid on the first line of a pidfile `ugw-swap --start` wrote.
fn pid_in(pidfile: &Path) -> i32 {
    let text = std::fs::read_to_string(pidfile).unwrap();
    text.lines().next().unwrap().parse().unwrap()
}

/// Kills the process a pidfile names when dropped: what a test started with `--start` goes
/// with it, even when the test fails.
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.0)
            && let Some(Ok(pid)) = text.lines().next().map(str::parse::<i32>)
        {
            kit::signal(pid, libc::SIGKILL);
        }
    }
}

#[test]
fn the_files_pass_gitlab_ci_schema_and_every_job_takes_the_resource_group() {
    let commands = ["check-jsonschema", "python3", "gitlab-ci-local", "git"];
    if !commands.iter().all(|c| kit::require(c)) || !python_yaml() {
        return;
    }
    for file in [examples().join(TEMPLATE), examples().join(".gitlab-ci.yml")] {
        let out = schema_check(&file);
        assert_eq!(
            out.code,
            0,
            "{}: {}{}",
            file.display(),
            out.stdout,
            out.stderr
        );
    }
    // The schema lets a hidden job (.ugw) hold anything: check the jobs as GitLab sees them,
    // with `extends` resolved.
    let repo = Repo::new();
    let preview = repo.preview();
    let out = schema_check(&preview);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let text = std::fs::read_to_string(&preview).unwrap();
    let broken = text.replacen(
        "resource_group: ugw-$UGW_ENVIRONMENT",
        "resource_group: [ugw-$UGW_ENVIRONMENT]",
        1,
    );
    assert_ne!(broken, text, "no resource_group in\n{text}");
    std::fs::write(&preview, broken).unwrap();
    assert_ne!(
        schema_check(&preview).code,
        0,
        "a list is not a resource_group"
    );

    let yaml = yaml_text(&text);
    let jobs: Vec<(&String, &Value)> = yaml
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, job)| job.get("script").is_some())
        .collect();
    assert_eq!(jobs.len(), 6);
    for (name, job) in jobs {
        assert_eq!(job["resource_group"], "ugw-$UGW_ENVIRONMENT", "{name}");
        assert_eq!(job["environment"]["name"], "$UGW_ENVIRONMENT", "{name}");
        assert_eq!(job["artifacts"]["when"], "always", "{name}");
        let paths = job["artifacts"]["paths"].as_array().unwrap();
        assert!(paths.contains(&Value::from("ugw-record.json")), "{name}");
    }
    assert_eq!(
        yaml["ugw-verify"]["artifacts"]["reports"]["junit"],
        "ugw-verify.xml"
    );
    assert_eq!(yaml["ugw-rollback"]["when"], "on_failure");
    assert_eq!(yaml["ugw-rollback"]["stage"], "deploy");
    assert_eq!(yaml["ugw-rollback-manual"]["when"], "manual");
    assert_eq!(yaml["ugw-rollback-manual"]["stage"], "deploy");
    assert_eq!(yaml["ugw-post-deploy"]["when"], "manual");
    assert_eq!(yaml["ugw-post-deploy"]["stage"], "verify");
    assert_eq!(
        yaml["variables"]["UGW_RECORD"],
        "$CI_PROJECT_DIR/ugw-record.json"
    );
}

// ---- gitlab-ci-local ----

/// A git project holding the example pipeline and the template where it includes it from,
/// with a remote named origin (gitlab-ci-local reads the project's name from it).
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().join("examples/gitlab-ci");
        std::fs::create_dir_all(&here).unwrap();
        for file in [TEMPLATE, "checks.json"] {
            std::fs::copy(examples().join(file), here.join(file)).unwrap();
        }
        std::fs::copy(
            examples().join(".gitlab-ci.yml"),
            dir.path().join(".gitlab-ci.yml"),
        )
        .unwrap();
        for args in [
            &["init", "-q"][..],
            &[
                "remote",
                "add",
                "origin",
                "https://gitlab.example.invalid/ops/app.git",
            ],
            &["add", "-A"],
            &[
                "-c",
                "user.name=ugw",
                "-c",
                "user.email=ugw@example.invalid",
                "commit",
                "-qm",
                "app",
            ],
        ] {
            let status = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        }
        Repo { dir }
    }

    /// The pipeline, with the variables that point the example at the fleet's node1, then
    /// `extra` ones (`KEY=VALUE`), and the manual jobs `manual`.
    fn pipeline(&self, fleet: &Fleet, extra: &[&str], manual: &[&str]) -> Outcome {
        let mut cmd = Command::new("gitlab-ci-local");
        cmd.args(["--shell-isolation", "--color=false"])
            .current_dir(self.dir.path())
            .env("PATH", kit::path_with_bins())
            .env_remove("UGW_HOST_ID")
            .stdin(Stdio::null());
        for (key, value) in node_variables(fleet) {
            cmd.arg("--variable").arg(format!("{key}={value}"));
        }
        for variable in extra {
            cmd.arg("--variable").arg(variable);
        }
        for job in manual {
            cmd.arg("--manual").arg(job);
        }
        kit::run_within(cmd, PIPELINE_LIMIT)
    }

    /// The pipeline as GitLab sees it (includes and `extends` resolved), in a file.
    fn preview(&self) -> PathBuf {
        let out = Command::new("gitlab-ci-local")
            .args(["--preview", "--color=false"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = self.dir.path().join("preview.gitlab-ci.yml");
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// The folder `job` ran in.
    fn build(&self, job: &str) -> PathBuf {
        self.dir.path().join(".gitlab-ci-local/builds").join(job)
    }

    /// The record `job` uploaded as its artifact.
    fn artifact_record(&self, job: &str) -> Record {
        let artifacts = self.dir.path().join(".gitlab-ci-local/artifacts").join(job);
        read_record(&artifacts.join("ugw-record.json"))
    }
}

/// What the example's variables become on the fleet's node1 (its folders, URL, how its
/// service is started and HAProxy server).
fn node_variables(fleet: &Fleet) -> Vec<(&'static str, String)> {
    let node = fleet.node(1);
    let node = node.display();
    vec![
        ("RELEASES_URL", fleet.env("RELEASES_URL").to_string()),
        ("APP_ROOT", format!("{node}/srv")),
        ("APP_URL", fleet.node_url(1).to_string()),
        ("APP_DB", format!("sqlite://{node}/data/app.db")),
        // The node has no service manager: ugw-swap is it (APP_START in place of APP_RESTART).
        ("APP_START", fleet.start_command(1)),
        ("APP_PIDFILE", kit::s(&fleet.pidfile(1)).to_string()),
        ("APP_LOG", format!("{node}/app.log")),
        ("UGW_STAGING", format!("{node}/staging")),
        (
            "UGW_BACKUP_FLAGS",
            format!(
                "--path {node}/data/files --db sqlite://{node}/data/app.db --out {node}/backups"
            ),
        ),
        (
            "UGW_DRAIN_FLAGS",
            format!(
                "--haproxy {} --server app/node1",
                fleet.env("HAPROXY_SOCKET")
            ),
        ),
        ("UGW_HOST_ID", "node1".to_string()),
        // The node, HAProxy, the pipeline and other tests share this machine: a p95 of a few
        // milliseconds jitters far more than on a real host.
        ("UGW_LATENCY_TOLERANCE", "400%".to_string()),
    ]
}

// ---- bash on stdin ----

/// `script` as GitLab's shell runner runs it: bash reading it on stdin, in `project`
/// (`CI_PROJECT_DIR`), with the pipeline's variables in the environment and `version` to
/// upgrade to. A last line records that the script went on after the tools.
fn on_stdin(
    fleet: &Fleet,
    project: &Path,
    job: &str,
    script: &[String],
    version: &str,
    extra: &[(&str, String)],
) -> Outcome {
    let mut bash = Command::new("bash");
    bash.env("CI_PROJECT_DIR", project)
        .env("APP_VERSION", version)
        .env("UGW_RECORD", project.join("ugw-record.json"))
        .env("UGW_CHECKS", examples().join("checks.json"))
        .env("UGW_HEALTH_TIMEOUT", "3s");
    for (key, value) in node_variables(fleet)
        .into_iter()
        .chain(extra.iter().cloned())
    {
        bash.env(key, value);
    }
    let text = format!(
        "set -eo pipefail\n{}\necho went on > {job}.done\nexit 0\n",
        script.join("\n")
    );
    let out = kit::script_on_stdin(bash, &text, project);
    if out.code == 0 {
        assert!(
            project.join(format!("{job}.done")).exists(),
            "{job}: {}",
            out.stderr
        );
    }
    out
}

/// `jobs` (name, expected exit code) of the template run in order in `project`, upgrading to
/// `version`: the record they leave.
fn run_jobs(fleet: &Fleet, project: &Path, jobs: &[(&str, i32)], version: &str) -> Record {
    run_jobs_with(fleet, project, jobs, version, &[])
}

/// [`run_jobs`] with `extra` variables over the node's.
fn run_jobs_with(
    fleet: &Fleet,
    project: &Path,
    jobs: &[(&str, i32)],
    version: &str,
    extra: &[(&str, String)],
) -> Record {
    let scripts = self::jobs();
    for (name, code) in jobs {
        let (_, script) = scripts.iter().find(|(n, _)| n == name).unwrap();
        let out = on_stdin(fleet, project, name, script, version, extra);
        assert_eq!(out.code, *code, "{name}: {}", out.stderr);
    }
    read_record(&project.join("ugw-record.json"))
}

/// The lines each job of the template runs, jobs in file order: its `before_script:` (its own,
/// or that of the job it `extends`) then its `script:`, which GitLab runs in one shell.
fn jobs() -> Vec<(String, Vec<String>)> {
    let template = yaml(&examples().join(TEMPLATE));
    let template = template.as_object().unwrap();
    let lines = |job: &Value, key: &str| -> Option<Vec<String>> {
        let own = job.get(key).or_else(|| {
            let base = template.get(job.get("extends")?.as_str()?)?;
            base.get(key)
        })?;
        Some(
            own.as_array()?
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect(),
        )
    };
    template
        .iter()
        .filter_map(|(name, job)| {
            let script = lines(job, "script")?;
            let before = lines(job, "before_script").unwrap_or_default();
            Some((name.clone(), [before, script].concat()))
        })
        .collect()
}

/// The `before_script:` of the template's hidden `.ugw` job, which every job extends.
fn before_script() -> Vec<String> {
    let template = yaml(&examples().join(TEMPLATE));
    template[".ugw"]["before_script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

// ---- reading ----

/// A YAML file as JSON, read by `PyYAML` (what ansible-core brings), keys in file order.
fn yaml(file: &Path) -> Value {
    yaml_text(&std::fs::read_to_string(file).unwrap())
}

fn yaml_text(text: &str) -> Value {
    let mut python = Command::new("python3");
    python.args([
        "-c",
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
    ]);
    let out = kit::with_stdin(python, text);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

fn schema_check(file: &Path) -> Outcome {
    let mut cmd = Command::new("check-jsonschema");
    cmd.args(["--builtin-schema", "vendor.gitlab-ci"]).arg(file);
    kit::run(cmd)
}

fn read_record(path: &Path) -> Record {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    kit::parse_record(&text)
}

/// Every command named is installed (python3 with `PyYAML`), and so is the demo fleet's
/// HAProxy.
fn components(commands: &[&str]) -> bool {
    commands.iter().all(|c| kit::require(c))
        && (!commands.contains(&"python3") || python_yaml())
        && kit::fleet::available()
}

/// Whether python3 has `PyYAML` (ansible-core depends on it; `.ci/run` installs that).
fn python_yaml() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3's yaml module is required under CI=true"
        );
        eprintln!("SKIPPED: python3 has no yaml module");
    }
    found
}

fn examples() -> PathBuf {
    kit::fleet::examples().join("gitlab-ci")
}
