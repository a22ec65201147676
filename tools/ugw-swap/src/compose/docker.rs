//! The `docker` and Compose command lines `--compose` runs: Compose found as `docker rollout`
//! finds it (the v2 plugin, `docker compose`, when it answers, else v1, `docker-compose`),
//! always given `-f FILE -f OVERRIDE -p PROJECT` so that the pin ugw wrote is what Compose
//! reads, and each command bounded by a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ugw_shared::runner::{RunOutcome, RunSpec, run};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How long `docker compose version` may take to answer when Compose is looked for.
const PROBE: Duration = Duration::from_secs(20);

/// Compose for one project: the program, the files, the project name.
#[derive(Debug, Clone)]
pub(crate) struct Compose {
    program: Vec<String>,
    file: PathBuf,
    override_file: PathBuf,
    project: String,
    env_file: Option<PathBuf>,
    /// Set in Compose's environment, so `${PORT}` in the file reads the slot's port.
    env: Vec<(String, String)>,
}

/// `docker compose` (v2) when it answers, else `docker-compose` (v1).
pub(crate) fn find_compose(ctx: &Ctx) -> Result<Vec<String>> {
    let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for words in candidates {
        let spec = RunSpec::argv(
            words[0],
            words[1..].iter().chain(&["version"]),
            Instant::now() + PROBE,
        );
        if run(&spec, &ctx.cancel).is_ok_and(|o| o.success()) {
            return Ok(words.iter().map(ToString::to_string).collect());
        }
    }
    Err(Error::new(
        ErrorKind::NotFound,
        "neither `docker compose` (v2) nor `docker-compose` (v1) answers `version`",
    ))
}

impl Compose {
    pub(crate) fn new(
        program: Vec<String>,
        file: &Path,
        override_file: &Path,
        project: &str,
        env_file: Option<&Path>,
    ) -> Self {
        Compose {
            program,
            file: file.to_path_buf(),
            override_file: override_file.to_path_buf(),
            project: project.to_string(),
            env_file: env_file.map(Path::to_path_buf),
            env: Vec::new(),
        }
    }

    /// The same Compose with `key=value` in its environment.
    pub(crate) fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub(crate) fn project(&self) -> &str {
        &self.project
    }

    /// Compose with `args` after the files and project; a failure is an error quoting it.
    pub(crate) fn run(&self, ctx: &Ctx, args: &[&str], deadline: Instant) -> Result<RunOutcome> {
        let mut words: Vec<String> = self.program[1..].to_vec();
        words.extend(["-f".into(), self.file.display().to_string()]);
        if self.override_file.exists() {
            words.extend(["-f".into(), self.override_file.display().to_string()]);
        }
        words.extend(["-p".into(), self.project.clone()]);
        if let Some(env_file) = &self.env_file {
            words.extend(["--env-file".into(), env_file.display().to_string()]);
        }
        words.extend(args.iter().map(ToString::to_string));
        let mut spec = RunSpec::argv(&self.program[0], &words, deadline);
        for (key, value) in &self.env {
            spec = spec.with_env(key, value);
        }
        let outcome = run(&spec, &ctx.cancel)?;
        if !outcome.success() {
            let what = format!("{} {}", self.program.join(" "), args.join(" "));
            return Err(ugw_shared::docker::failed(
                ctx,
                ErrorKind::Io,
                &what,
                &outcome,
            ));
        }
        Ok(outcome)
    }

    /// The ids of the containers of `service` in this project (running or not).
    pub(crate) fn containers(
        &self,
        ctx: &Ctx,
        service: &str,
        deadline: Instant,
    ) -> Result<Vec<String>> {
        let out = self.run(ctx, &["ps", "-q", service], deadline)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect())
    }
}

/// `docker ARGS`, its stdout trimmed; a failure is an error quoting it.
pub(crate) fn docker(ctx: &Ctx, args: &[&str], deadline: Instant) -> Result<String> {
    ugw_shared::docker::Docker::cli().text(ctx, args, deadline)
}

/// A container's name (without Docker's leading `/`).
pub(crate) fn container_name(ctx: &Ctx, id: &str, deadline: Instant) -> Result<String> {
    let name = docker(ctx, &["inspect", "--format", "{{.Name}}", id], deadline)?;
    Ok(name.trim_start_matches('/').to_string())
}
