//! Docker for the container tests (issue 24): whether a daemon and a Compose answer here
//! (`require_docker`: skip locally, fail under CI=true), a loopback distribution registry in
//! the test's temp folder (`Registry`), the demo service as an image built offline and pushed
//! to it (`build_demo_image`, `build_image`, `push_other_content`), and a guard that removes
//! every container, Compose project, volume and image a test made under its unique prefix,
//! even when the test panics (`Cleanup`).
//!
//! Every container runs with the host's network (`--network host`, `network_mode: host`):
//! dockerd here runs with `--bridge=none`, so nothing gets a container IP and all traffic
//! stays on 127.0.0.1, on ports the test picks.

use super::{Outcome, RUN_LIMIT, bin, eventually, free_port, run_within, s};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The label an image's version travels in (OCI's annotation key, as `LABEL`).
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";

/// Where the demo binary (and any extra binary) lives inside an image the kit builds.
pub const APP_DIR: &str = "/app";

/// A reachable Docker daemon and the Compose this machine has.
#[derive(Debug, Clone)]
pub struct Docker {
    compose: Vec<String>,
}

impl Docker {
    /// How to run Compose here: `["docker", "compose"]` (the v2 plugin) when it answers,
    /// else `["docker-compose"]` (v1), the order `docker rollout` tries them in.
    pub fn compose_command(&self) -> Vec<String> {
        self.compose.clone()
    }

    /// Whether Compose is the v2 plugin (`docker compose`), not v1 (`docker-compose`).
    pub fn compose_is_v2(&self) -> bool {
        self.compose.len() == 2
    }

    /// Compose for `project` with `file`, the rest of the arguments still to add.
    pub fn compose(&self, project: &str, file: &Path) -> Command {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .args(["--project-name", project, "--file", s(file)])
            .stdin(Stdio::null());
        cmd
    }
}

/// The daemon (not just the CLI) and a Compose, or `None` with a printed reason: a missing
/// one skips the test locally and fails it under CI=true, as `kit::require` does.
pub fn require_docker() -> Option<Docker> {
    let missing = if !answers("docker", &["version", "--format", "{{.Server.Version}}"]) {
        "the Docker daemon does not answer `docker version`"
    } else if answers("docker", &["compose", "version"]) {
        return Some(Docker {
            compose: vec!["docker".into(), "compose".into()],
        });
    } else if answers("docker-compose", &["version"]) {
        return Some(Docker {
            compose: vec!["docker-compose".into()],
        });
    } else {
        "neither `docker compose` nor `docker-compose` answers"
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Docker is required under CI=true: {missing}"
    );
    eprintln!("SKIPPED: {missing}");
    None
}

/// Whether `program args` runs and exits 0 within 20 s.
fn answers(program: &str, args: &[&str]) -> bool {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    let Ok(child) = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() else {
        return false;
    };
    let mut child = child;
    let mut status = None;
    eventually(Duration::from_secs(20), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status.is_some_and(|s| s.success())
}

/// `docker ARGS`, captured, for at most [`RUN_LIMIT`].
pub fn docker(args: &[&str]) -> Outcome {
    let mut cmd = Command::new("docker");
    cmd.args(args).stdin(Stdio::null());
    run_within(cmd, RUN_LIMIT)
}

/// `docker ARGS`'s stdout, trimmed; the test fails with its stderr unless it exits 0.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert_eq!(
        out.code, 0,
        "docker {args:?} failed: {}{}",
        out.stdout, out.stderr
    );
    out.stdout.trim().to_string()
}

// ---- cleaning up ----

/// A unique name prefix for one test (`ugwtest-PID-N`) and the guard that removes, on drop,
/// every container named with it or in a Compose project named with it, the volumes and
/// networks named with it or of such a project, and every image whose repository holds it.
/// Name everything a test creates in Docker through [`Cleanup::name`].
#[derive(Debug)]
pub struct Cleanup {
    prefix: String,
}

impl Cleanup {
    /// A fresh prefix, unique among the tests of this run and parallel runs.
    pub fn new() -> Cleanup {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Cleanup {
            prefix: format!(
                "ugwtest-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ),
        }
    }

    /// The prefix itself (`ugwtest-PID-N`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `PREFIX-what`: a container, project, volume or image repository name the guard
    /// removes (lower case, as Docker and Compose want names).
    pub fn name(&self, what: &str) -> String {
        format!("{}-{}", self.prefix, what.to_ascii_lowercase())
    }

    /// Remove everything named with the prefix now (also what drop does).
    pub fn remove_all(&self) {
        let project_label = "com.docker.compose.project";
        let mut containers = listed(&["ps", "-aq", "--filter", &format!("name={}", self.prefix)]);
        containers.extend(
            listed(&[
                "ps",
                "-a",
                "--format",
                &format!("{{{{.ID}}}} {{{{.Label \"{project_label}\"}}}}"),
            ])
            .into_iter()
            .filter_map(|line| {
                let (id, project) = line.split_once(' ')?;
                project.starts_with(&self.prefix).then(|| id.to_string())
            }),
        );
        // A container both named with the prefix and in such a project is listed twice; given
        // twice, `docker rm` fails on the second ("already in progress") and the images it
        // used are still in use when they are removed.
        containers.sort();
        containers.dedup();
        remove("rm", &["-f", "-v"], &containers);
        let volumes: Vec<String> = listed(&["volume", "ls", "--format", "{{.Name}}"])
            .into_iter()
            .filter(|name| name.starts_with(&self.prefix))
            .collect();
        remove("volume", &["rm", "-f"], &volumes);
        let networks: Vec<String> = listed(&["network", "ls", "--format", "{{.Name}}"])
            .into_iter()
            .filter(|name| name.starts_with(&self.prefix))
            .collect();
        remove("network", &["rm"], &networks);
        remove_images(|repository| repository.contains(&self.prefix));
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup::new()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// The lines `docker ARGS` prints; none when it fails (cleanup goes on regardless).
fn listed(args: &[&str]) -> Vec<String> {
    let out = docker(args);
    if out.code != 0 {
        eprintln!("cleanup: docker {args:?} failed: {}", out.stderr);
        return Vec::new();
    }
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// `docker COMMAND ARGS NAMES...`, when there are names; a failure is printed, not fatal.
fn remove(command: &str, args: &[&str], names: &[String]) {
    if names.is_empty() {
        return;
    }
    let mut all = vec![command];
    all.extend_from_slice(args);
    all.extend(names.iter().map(String::as_str));
    let out = docker(&all);
    if out.code != 0 {
        eprintln!("cleanup: docker {all:?} failed: {}", out.stderr);
    }
}

/// Remove (forced) every local image whose repository `matches`, by id.
fn remove_images(matches: impl Fn(&str) -> bool) {
    let mut ids: Vec<String> = listed(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}",
    ])
    .into_iter()
    .filter_map(|line| {
        let (id, repository) = line.split_once(' ')?;
        matches(repository).then(|| id.to_string())
    })
    .collect();
    ids.sort();
    ids.dedup();
    remove("rmi", &["-f"], &ids);
}

// ---- the registry ----

/// The distribution registry (`docker-registry serve CONFIG`) on 127.0.0.1 and a free port,
/// its storage and log in the test's temp folder; stopped on drop, together with the local
/// images of its repositories (they name a registry that is gone).
pub struct Registry {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Registry {
    /// Start it under `dir/registry/` and wait until `/v2/` answers (a lost race for the port
    /// is retried on another).
    pub fn start(dir: &Path) -> Registry {
        Registry::start_in(dir, "registry", "")
    }

    /// A second registry on the storage of [`Registry::start`]'s in `dir` (what was pushed
    /// there, it serves too), which wants HTTP basic auth by the bcrypt `htpasswd` file: its
    /// config and log under `dir/registry-auth/`, `/v2/` answering 401 when it is up.
    pub fn start_with_auth(dir: &Path, htpasswd: &Path) -> Registry {
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: ugw-test\n    path: {}\n",
            s(htpasswd)
        );
        Registry::start_in(dir, "registry-auth", &auth)
    }

    /// A registry whose config and log are in `dir/name/`, its storage `dir/registry/storage`,
    /// with `extra` (YAML) at the end of its config.
    fn start_in(dir: &Path, name: &str, extra: &str) -> Registry {
        let home = dir.join(name);
        let storage = dir.join("registry").join("storage");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&storage).unwrap();
        let log = home.join("registry.log");
        for _ in 0..3 {
            let port = free_port();
            let config = home.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n{extra}",
                    s(&storage)
                ),
            )
            .unwrap();
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new("docker-registry")
                .args(["serve", s(&config)])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("docker-registry starts (is it installed?)");
            let mut registry = Registry {
                child: Some(child),
                port,
                log: log.clone(),
            };
            let up = eventually(Duration::from_secs(10), || {
                registry.exited() || answers_v2(port)
            });
            if up && !registry.exited() {
                return registry;
            }
            registry.stop();
        }
        panic!(
            "the registry did not come up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file its log (with the access log: one line per request) goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many `GET /v2/REPO/manifests/...` requests it served: a pull asks for the manifest,
    /// so none since a point means nothing was pulled ("already present: no pull").
    pub fn manifest_gets(&self, repo: &str) -> usize {
        self.requests_to(&format!("\"GET /v2/{repo}/manifests/"))
    }

    /// How many `GET /v2/REPO/blobs/...` requests it served (the layers a pull downloads).
    pub fn blob_gets(&self, repo: &str) -> usize {
        self.requests_to(&format!("\"GET /v2/{repo}/blobs/"))
    }

    /// Access-log lines (the combined-log ones) that hold `fragment`.
    fn requests_to(&self, fragment: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains(fragment))
            .count()
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        let ours = format!("{}/", self.host_port());
        remove_images(|repository| repository.starts_with(&ours));
    }
}

/// Whether `GET /v2/` on 127.0.0.1:`port` answers 200 (the registry's "I am up"), or 401
/// (the same, from one that wants credentials).
fn answers_v2(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && (head.ends_with(b" 200") || head.ends_with(b" 401"))
}

// ---- images ----

/// How the demo service in an image behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Ready at once, `/health/ready` answers 200 with the image's version.
    Healthy,
    /// `/health/ready` answers 500 (a bad release: `--fail-status 500`).
    Bad,
    /// These `ugw-demo-app` flags after the version label (`--ready-after 2s`...).
    Flags(Vec<String>),
}

/// What to put in an image besides the demo service.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The repository inside the registry (use [`Cleanup::name`], so leftovers are found).
    pub repo: String,
    /// Its tag, the label `org.opencontainers.image.version` and the demo's version label.
    pub version: String,
    pub behaviour: Behaviour,
    /// Files to add: (absolute path in the image, content), e.g. `/migrations/0001_x.sql`.
    pub files: Vec<(String, Vec<u8>)>,
    /// More of our binaries (from target/debug) to put in `/app`, with their libraries: e.g.
    /// `ugw-wait-healthy` for a Compose healthcheck, since the image has no shell or curl.
    pub binaries: Vec<String>,
    /// Written to `/app/variant`: other content, so another digest, for the same tag.
    pub variant: Option<String>,
}

impl ImageSpec {
    /// The demo service alone.
    pub fn new(repo: &str, version: &str, behaviour: Behaviour) -> ImageSpec {
        ImageSpec {
            repo: repo.to_string(),
            version: version.to_string(),
            behaviour,
            files: Vec::new(),
            binaries: Vec::new(),
            variant: None,
        }
    }
}

/// An image pushed to the test registry and no longer present locally (so a pull pulls).
#[derive(Debug, Clone)]
pub struct DemoImage {
    /// `127.0.0.1:PORT/REPO`.
    pub repository: String,
    /// The repository inside the registry (`REPO`), as its log names it.
    pub repo: String,
    pub version: String,
    /// The manifest digest the registry holds it under (`sha256:...`).
    pub digest: String,
}

impl DemoImage {
    /// `127.0.0.1:PORT/REPO:VERSION`.
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.repository, self.version)
    }

    /// `127.0.0.1:PORT/REPO@sha256:...`: the reference that pulls exactly this image.
    pub fn by_digest(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// A record (run `record_run`) whose one ok `ugw-fetch --image` step, of run `step_run` on
/// this host, fetched `repository@digest` as ugw-fetch records it: what ugw-swap --compose and
/// ugw-migrate --from-image take the image from.
pub fn fetched_image_record(
    record_run: &str,
    step_run: &str,
    repository: &str,
    digest: &str,
    version: &str,
) -> serde_json::Value {
    serde_json::json!({
        "ugw": 1, "run": record_run, "ok": true,
        "steps": [{
            "tool": "ugw-fetch", "tool_version": "0.1.0", "run": step_run,
            "host": ugw_shared::time::hostname(),
            "started": "2026-12-07T10:00:00.000Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
            "changed": true, "dry_run": false,
            "result": {"image": repository, "digest": digest,
                       "reference": format!("{repository}@{digest}"), "tag": version,
                       "version": version, "id": "sha256:00", "pulled": true, "verified": true}
        }]
    })
}

/// The demo service as `REGISTRY/REPO:VERSION`, pushed, removed locally. Its entrypoint is
/// `/app/ugw-demo-app --log-requests --version-label VERSION [behaviour flags]` and its
/// command `--listen 127.0.0.1:8080`: give `--listen 127.0.0.1:PORT` as the container's
/// command (`docker run IMAGE --listen ...`, Compose's `command:`), there is no shell in it.
pub fn build_demo_image(
    registry: &Registry,
    repo: &str,
    version: &str,
    behaviour: Behaviour,
) -> DemoImage {
    build_image(registry, &ImageSpec::new(repo, version, behaviour))
}

/// Other content pushed under `image`'s tag (the tag moves; the old digest stays in the
/// registry): the mismatch case, a tag that no longer names what a digest pinned. Returns the
/// image the tag names now.
pub fn push_other_content(registry: &Registry, image: &DemoImage) -> DemoImage {
    let mut spec = ImageSpec::new(&image.repo, &image.version, Behaviour::Healthy);
    spec.variant = Some(format!("other content than {}", image.digest));
    build_image(registry, &spec)
}

/// Build `spec` offline (a root filesystem of our binaries and the libraries `ldd` names,
/// `docker import`), tag it `REGISTRY/REPO:VERSION`, push it, and remove it locally.
pub fn build_image(registry: &Registry, spec: &ImageSpec) -> DemoImage {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let mut binaries = vec!["ugw-demo-app".to_string()];
    binaries.extend(spec.binaries.iter().cloned());
    for name in &binaries {
        add_binary(&root, &bin(name));
    }
    for (path, content) in &spec.files {
        let inside = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(inside, content).unwrap();
    }
    if let Some(variant) = &spec.variant {
        std::fs::write(root.join("app/variant"), variant).unwrap();
    }
    let tarball = work.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
            s(&root),
            "-cf",
        ])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success(), "tar of the image's root filesystem failed");

    let repository = format!("{}/{}", registry.host_port(), spec.repo);
    let tagged = format!("{repository}:{}", spec.version);
    docker_ok(&[
        "import",
        "--change",
        &entrypoint(spec),
        "--change",
        r#"CMD ["--listen", "127.0.0.1:8080"]"#,
        "--change",
        &format!("LABEL {VERSION_LABEL}={}", spec.version),
        "--change",
        &format!("ENV UGW_DEMO_VERSION={}", spec.version),
        s(&tarball),
        &tagged,
    ]);
    docker_ok(&["push", &tagged]);
    let digests = docker_ok(&["inspect", "--format", "{{json .RepoDigests}}", &tagged]);
    let digest = serde_json::from_str::<Vec<String>>(&digests)
        .unwrap()
        .into_iter()
        .find_map(|d| d.strip_prefix(&format!("{repository}@")).map(String::from))
        .unwrap_or_else(|| panic!("no digest of {repository} after the push: {digests}"));
    docker_ok(&["rmi", "-f", &tagged]);
    // Pulled earlier by digest, it would stay here under `REPO@sha256` alone.
    remove_images(|r| r == repository);
    DemoImage {
        repository,
        repo: spec.repo.clone(),
        version: spec.version.clone(),
        digest,
    }
}

/// The image's `ENTRYPOINT` instruction: the demo service with its version and behaviour.
fn entrypoint(spec: &ImageSpec) -> String {
    let mut words = vec![
        format!("{APP_DIR}/ugw-demo-app"),
        "--log-requests".to_string(),
        "--version-label".to_string(),
        spec.version.clone(),
    ];
    match &spec.behaviour {
        Behaviour::Healthy => {}
        Behaviour::Bad => words.extend(["--fail-status".to_string(), "500".to_string()]),
        Behaviour::Flags(flags) => words.extend(flags.iter().cloned()),
    }
    format!("ENTRYPOINT {}", serde_json::to_string(&words).unwrap())
}

/// Copy `binary` into `ROOT/app/` and every library `ldd` names (the dynamic loader too) to
/// its own path under `root`, so the binary runs in an image with nothing else in it.
fn add_binary(root: &Path, binary: &Path) {
    let app = root.join(APP_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(binary, app.join(binary.file_name().unwrap())).unwrap();
    let ldd = Command::new("ldd").arg(binary).output().expect("ldd runs");
    assert!(ldd.status.success(), "ldd {} failed", binary.display());
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux... (0x...)`;
        // linux-vdso has no file.
        let path = line
            .split_once("=>")
            .map_or(line, |(_, after)| after)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if !path.starts_with('/') {
            continue;
        }
        let inside = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        // `copy` follows symlinks: the image gets the library itself under the name asked for.
        std::fs::copy(path, &inside).unwrap_or_else(|e| panic!("copy {path}: {e}"));
    }
}

// ---- containers ----

/// Start `image` (a reference) as container `name` on the host's network, detached, with
/// `args` as its command (`--listen 127.0.0.1:PORT`). Returns the container's id.
#[track_caller]
pub fn run_container(name: &str, image: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "-d", "--name", name, "--network", "host", image];
    all.extend_from_slice(args);
    docker_ok(&all)
}

/// Run the demo `image` as container `name` listening on 127.0.0.1:`port`, and wait (10 s at
/// most) until it accepts connections; panics with its logs otherwise.
#[track_caller]
pub fn run_demo(name: &str, image: &str, port: u16) -> String {
    let listen = format!("127.0.0.1:{port}");
    let id = run_container(name, image, &["--listen", &listen]);
    let up = eventually(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(
        up,
        "container {name} never listened on {listen}: {}",
        logs(name)
    );
    id
}

/// A container's logs (stdout and stderr), for a failing test's message.
pub fn logs(name: &str) -> String {
    let out = docker(&["logs", name]);
    format!("{}{}", out.stdout, out.stderr)
}

/// `docker inspect --format FORMAT THING`, trimmed (an image, a container, a volume).
#[track_caller]
pub fn inspect(thing: &str, format: &str) -> String {
    docker_ok(&["inspect", "--format", format, thing])
}

/// Whether an image with this reference (tag or `REPO@sha256:...`) is present locally.
pub fn image_present(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).code == 0
}

/// A Compose test's set-up: a temp folder, the guard of its Docker names, a registry of its
/// own, and the demo service's images in it, all of one repository (`PREFIX-api`), in the
/// order asked. Fields drop in this order: images, registry, containers (the guard), folder.
pub struct Lab {
    pub built: Vec<DemoImage>,
    /// Serves `built` until the test ends.
    _registry: Registry,
    pub cleanup: Cleanup,
    pub dir: tempfile::TempDir,
}

impl Lab {
    /// The images of `versions`, each with its behaviour.
    pub fn of(versions: &[(&str, Behaviour)]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let cleanup = Cleanup::new();
        let registry = Registry::start(dir.path());
        let repo = cleanup.name("api");
        let built = versions
            .iter()
            .map(|(version, behaviour)| {
                build_demo_image(&registry, &repo, version, behaviour.clone())
            })
            .collect();
        Lab {
            built,
            _registry: registry,
            cleanup,
            dir,
        }
    }

    /// Healthy images of `versions`.
    pub fn healthy(versions: &[&str]) -> Lab {
        let versions: Vec<(&str, Behaviour)> = versions
            .iter()
            .map(|version| (*version, Behaviour::Healthy))
            .collect();
        Lab::of(&versions)
    }
}

/// A Compose file `DIR/compose.yml` with one service `api` of `REPOSITORY:unpinned` on the
/// host network, listening on 127.0.0.1:`listen` (a port, or `${PORT}` for start-first).
pub fn compose_file(dir: &Path, repository: &str, listen: &str) -> PathBuf {
    let file = dir.join("compose.yml");
    std::fs::write(
        &file,
        format!(
            "services:\n  api:\n    image: \"{repository}:unpinned\"\n    network_mode: host\n    \
             command: [\"--listen\", \"127.0.0.1:{listen}\"]\n"
        ),
    )
    .unwrap();
    file
}

/// The version the demo service on `port` says it is, when it answers `/health/ready` with 200
/// now.
pub fn version_on(port: u16) -> Option<String> {
    let (code, body) = http_get(port, "/health/ready")?;
    let value: serde_json::Value = serde_json::from_str(&body).ok()?;
    (code == 200).then(|| value["version"].as_str().unwrap_or("").to_string())
}

/// Whether the demo service on `port` comes to answer as `version` within 20 s.
pub fn serves(port: u16, version: &str) -> bool {
    eventually(Duration::from_secs(20), || {
        version_on(port).as_deref() == Some(version)
    })
}

/// `GET PATH` on 127.0.0.1:`port` (HTTP/1.0, 5 s at most): the status and body, or `None`
/// when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}
