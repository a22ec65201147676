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

/// What the example's variables become on the fleet's node1 (its folders, URL, service
/// manager and HAProxy server).
fn node_variables(fleet: &Fleet) -> Vec<(&'static str, String)> {
    let node = fleet.node(1);
    let node = node.display();
    vec![
        ("RELEASES_URL", fleet.env("RELEASES_URL").to_string()),
        ("APP_ROOT", format!("{node}/srv")),
        ("APP_URL", fleet.node_url(1).to_string()),
        ("APP_DB", format!("sqlite://{node}/data/app.db")),
        ("APP_RESTART", format!("{node}/restart")),
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
fn on_stdin(fleet: &Fleet, project: &Path, job: &str, script: &[String], version: &str) -> Outcome {
    let mut bash = Command::new("bash");
    bash.env("CI_PROJECT_DIR", project)
        .env("APP_VERSION", version)
        .env("UGW_RECORD", project.join("ugw-record.json"))
        .env("UGW_CHECKS", examples().join("checks.json"))
        .env("UGW_HEALTH_TIMEOUT", "3s");
    for (key, value) in node_variables(fleet) {
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
    let scripts = self::jobs();
    for (name, code) in jobs {
        let (_, script) = scripts.iter().find(|(n, _)| n == name).unwrap();
        let out = on_stdin(fleet, project, name, script, version);
        assert_eq!(out.code, *code, "{name}: {}", out.stderr);
    }
    read_record(&project.join("ugw-record.json"))
}

/// The `script:` lines of each job of the template, jobs in file order.
fn jobs() -> Vec<(String, Vec<String>)> {
    yaml(&examples().join(TEMPLATE))
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, job)| {
            let lines = job.get("script")?.as_array()?;
            Some((
                name.clone(),
                lines
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect(),
            ))
        })
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
