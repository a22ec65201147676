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

/// `docker compose` (v2) when it answers, else `docker-compose` (v1) when it is on `PATH`.
/// v1 is not asked its version: it is a Python program that takes most of a second to start,
/// once more per swap than it needs (a v1 that does not run fails the first command it runs,
/// with what it said).
pub(crate) fn find_compose(ctx: &Ctx) -> Result<Vec<String>> {
    let plugin = RunSpec::argv("docker", ["compose", "version"], Instant::now() + PROBE);
    if run(&plugin, &ctx.cancel).is_ok_and(|o| o.success()) {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    if on_path("docker-compose") {
        return Ok(vec!["docker-compose".into()]);
    }
    Err(Error::new(
        ErrorKind::NotFound,
        "neither `docker compose` (v2) answers `version` nor is `docker-compose` (v1) on PATH",
    ))
}

/// Whether an executable file `name` is in a folder of `PATH`.
fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The project name as Compose writes it into its labels: lower case, only `a-z`, `0-9`, `-`
/// and `_` kept (both v1 and v2 normalise it so).
fn label_name(project: &str) -> String {
    project
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
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
        Ok(self
            .containers_named(ctx, service, deadline)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Stop (`docker stop`: the service's own stop signal and grace period, which Compose put
    /// in the container's config) and remove every container of `services` in this project:
    /// what `rm -s -f` does, without starting Compose for it.
    pub(crate) fn stop_and_remove(
        &self,
        ctx: &Ctx,
        services: &[String],
        deadline: Instant,
    ) -> Result<()> {
        let mut ids = Vec::new();
        for service in services {
            ids.extend(self.containers(ctx, service, deadline)?);
        }
        if ids.is_empty() {
            return Ok(());
        }
        for command in ["stop", "rm"] {
            let mut args = vec![command];
            args.extend(ids.iter().map(String::as_str));
            docker(ctx, &args, deadline)?;
        }
        Ok(())
    }

    /// The containers of `service` in this project (running or not), id and name, as `ps`
    /// lists them but asked of docker by Compose's own labels: one quick call where Compose v1
    /// would start Python and then need an inspect per container.
    pub(crate) fn containers_named(
        &self,
        ctx: &Ctx,
        service: &str,
        deadline: Instant,
    ) -> Result<Vec<(String, String)>> {
        let project = format!(
            "label=com.docker.compose.project={}",
            label_name(&self.project)
        );
        let service = format!("label=com.docker.compose.service={service}");
        let listed = docker(
            ctx,
            &[
                "ps",
                "-a",
                "--no-trunc",
                "--filter",
                &project,
                "--filter",
                &service,
                "--filter",
                "label=com.docker.compose.oneoff=False",
                "--format",
                "{{.ID}} {{.Names}}",
            ],
            deadline,
        )?;
        Ok(listed
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(id, name)| (id.to_string(), name.to_string()))
            .collect())
    }
}

/// `docker ARGS`, its stdout trimmed; a failure is an error quoting it.
pub(crate) fn docker(ctx: &Ctx, args: &[&str], deadline: Instant) -> Result<String> {
    ugw_shared::docker::Docker::cli().text(ctx, args, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_name_is_normalised_as_compose_labels_it() {
        assert_eq!(label_name("My.App_2-blue"), "myapp_2-blue");
        assert_eq!(label_name("shop"), "shop");
    }

    #[test]
    fn a_program_is_found_on_path_only_when_it_is_an_executable_file() {
        assert!(on_path("sh"));
        assert!(!on_path("ugw-no-such-program"));
    }
}
