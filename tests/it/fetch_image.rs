//! `ugw-fetch --image` against a real loopback registry and dockerd (issue 24): the pull by
//! digest, by `--digest` and by a checksum list; a tag that names other content than the
//! expected digest (exit 1, not tagged); an image present already (no manifest GET); a
//! failing smoke test; a REF with no digest at all (exit 2, nothing run); a registry
//! password that never shows.

use crate::kit;
use crate::kit::Kind;
use crate::kit::docker::{self, Behaviour, Cleanup, DemoImage, Registry};
use std::path::Path;

/// Docker, a registry, a guard and the demo image pushed to it (and gone locally).
fn setup(dir: &Path) -> Option<(Cleanup, Registry, DemoImage)> {
    docker::require_docker()?;
    let cleanup = Cleanup::new();
    let registry = Registry::start(dir);
    let image = docker::build_demo_image(
        &registry,
        &cleanup.name("demo"),
        "1.4.0",
        Behaviour::Healthy,
    );
    Some((cleanup, registry, image))
}

fn fetch_image(args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-fetch");
    cmd.arg("--image").args(args);
    kit::run(cmd)
}

/// `ugw-fetch --image` of `image` by digest, smoke-tested with `command` within `timeout`.
fn fetch_with_smoke(image: &DemoImage, command: &str, timeout: &str) -> kit::Outcome {
    fetch_image(&[
        &image.by_digest(),
        "--smoke",
        command,
        "--smoke-timeout",
        timeout,
    ])
}

/// Nothing was pulled: no manifest GET since `gets_before`, and no `image` here.
fn assert_nothing_pulled(registry: &Registry, image: &DemoImage, gets_before: usize) {
    assert_eq!(registry.manifest_gets(&image.repo), gets_before);
    assert!(!docker::image_present(&image.tagged()));
}

#[test]
fn an_image_pinned_by_digest_is_pulled_checked_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, registry, image)) = setup(dir.path()) else {
        return;
    };
    let out = fetch_image(&[&image.by_digest()]);
    out.succeeds();
    let step = out.step("ugw-fetch");
    assert!(step.changed);
    assert_eq!(step.result["image"], image.repository);
    assert_eq!(step.result["digest"], image.digest);
    assert_eq!(step.result["reference"], image.by_digest());
    // No tag in REF: the version is the image's own label.
    assert_eq!(step.result["version"], "1.4.0");
    assert_eq!(step.result["pulled"], true);
    assert!(docker::image_present(&image.by_digest()));
    assert!(registry.manifest_gets(&image.repo) >= 1);
}

#[test]
fn a_tag_with_digest_given_is_pulled_and_its_version_is_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, _registry, image)) = setup(dir.path()) else {
        return;
    };
    let out = fetch_image(&[&image.tagged(), "--digest", &image.digest]);
    out.succeeds();
    let step = out.step("ugw-fetch");
    assert_eq!(step.result["reference"], image.by_digest());
    assert_eq!(step.result["version"], "1.4.0");
    assert_eq!(step.result["tag"], "1.4.0");
    assert!(docker::image_present(&image.tagged()));
}

#[test]
fn a_checksum_list_gives_the_digest_and_a_signed_one_must_verify() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, _registry, image)) = setup(dir.path()) else {
        return;
    };
    let other = format!("sha256:{}", "0".repeat(64));
    let list = dir.path().join("IMAGES");
    std::fs::write(
        &list,
        format!(
            "{other}  {}:0.9\n{}  {}\n",
            image.repository,
            image.digest,
            image.tagged()
        ),
    )
    .unwrap();
    let out = fetch_image(&[
        &image.tagged(),
        "--sha256-file",
        kit::s(&list),
        "--release",
        "v1.4.0-rc",
    ]);
    out.succeeds();
    let step = out.step("ugw-fetch");
    assert_eq!(step.result["digest"], image.digest);
    assert_eq!(step.result["version"], "v1.4.0-rc");

    // The same list signed with minisign: it verifies, and a forged line does not.
    if kit::require("minisign") {
        let minisign = |args: &[&str]| {
            let out = std::process::Command::new("minisign")
                .args(args)
                .current_dir(dir.path())
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            assert!(out.status.success(), "minisign {args:?}: {out:?}");
        };
        minisign(&["-G", "-W", "-p", "list.pub", "-s", "list.key"]);
        minisign(&["-S", "-s", "list.key", "-m", "IMAGES"]);
        let signed = |list: &Path| {
            fetch_image(&[
                &image.tagged(),
                "--sha256-file",
                kit::s(list),
                "--minisign-pubkey",
                kit::s(&dir.path().join("list.pub")),
                "--minisign-sig-url",
                &format!("file://{}", kit::s(&dir.path().join("IMAGES.minisig"))),
            ])
        };
        signed(&list).succeeds();
        let forged = dir.path().join("IMAGES-forged");
        std::fs::write(&forged, format!("{other}  {}\n", image.tagged())).unwrap();
        let out = signed(&forged);
        out.assert_code(1);
        assert_eq!(out.last_step().error_kind(), "bad_signature");
    }

    // A tag the list does not name: nothing to check against, nothing pulled.
    let missing = format!("{}:2.0", image.repository);
    fetch_image(&[&missing, "--sha256-file", kit::s(&list)]).fails_with(Kind::NotFound);
    assert!(!docker::image_present(&missing));
}

#[test]
fn a_tag_repushed_with_other_content_fails_closed_and_is_not_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, registry, image)) = setup(dir.path()) else {
        return;
    };
    let repushed = docker::push_other_content(&registry, &image);
    assert_ne!(repushed.digest, image.digest);
    let out = fetch_image(&[&image.tagged(), "--digest", &image.digest]);
    out.fails_with(Kind::ChecksumMismatch)
        .stderr_has(&image.digest);
    assert_eq!(out.code, 1);
    assert!(
        !docker::image_present(&image.tagged()),
        "the tag must not name the image whose digest did not match"
    );
    assert!(!docker::image_present(&repushed.by_digest()));
}

#[test]
fn an_image_present_with_its_digest_is_not_pulled_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, registry, image)) = setup(dir.path()) else {
        return;
    };
    fetch_image(&[&image.by_digest()]).succeeds();
    let gets = registry.manifest_gets(&image.repo);
    let out = fetch_image(&[&image.tagged(), "--digest", &image.digest]);
    out.succeeds();
    let step = out.step("ugw-fetch");
    assert!(!step.changed);
    assert_eq!(step.result["pulled"], false);
    assert_eq!(step.result["reference"], image.by_digest());
    assert_eq!(
        registry.manifest_gets(&image.repo),
        gets,
        "no manifest GET for an image present already"
    );
}

#[test]
fn a_failing_smoke_test_fails_the_step_and_removes_the_pulled_image() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, _registry, image)) = setup(dir.path()) else {
        return;
    };
    // The image has no shell: CMD's words are the container's argv.
    let out = fetch_with_smoke(&image, "/app/ugw-demo-app --no-such-flag", "30s");
    out.fails_with(Kind::SmokeFailed).stderr_has("smoke test");
    let step = out.step("ugw-fetch");
    assert_eq!(step.result["smoke"]["outcome"], "exit 2");
    assert!(!docker::image_present(&image.by_digest()));

    // The same command that succeeds passes, and leaves no container behind.
    fetch_image(&[&image.by_digest(), "--smoke", "/app/ugw-demo-app --help"]).succeeds();
    assert_eq!(no_containers_of(&image), "");
}

/// The containers (running or not) made from `image`, one id a line.
fn no_containers_of(image: &DemoImage) -> String {
    docker::docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        &format!("ancestor={}", image.by_digest()),
    ])
}

#[test]
fn a_smoke_test_past_its_timeout_fails_and_leaves_no_container_running() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, _registry, image)) = setup(dir.path()) else {
        return;
    };
    // The demo service never exits by itself: the smoke test's deadline stops it.
    let out = fetch_with_smoke(&image, "/app/ugw-demo-app --listen 127.0.0.1:8080", "3s");
    out.fails_with(Kind::SmokeFailed).stderr_has("timed out");
    assert_eq!(
        no_containers_of(&image),
        "",
        "the smoke container outlived its deadline"
    );
}

#[test]
fn an_image_without_a_digest_or_list_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, registry, image)) = setup(dir.path()) else {
        return;
    };
    let before = registry.manifest_gets(&image.repo);
    let out = fetch_image(&[&image.tagged()]);
    out.fails_with(Kind::Usage).stderr_has("no integrity check");
    assert_eq!(out.code, 2);
    assert_nothing_pulled(&registry, &image, before);
    // A REF that would read as a docker flag is refused as a reference.
    fetch_image(&["--help=x", "--digest", &image.digest]).assert_code(2);
}

#[test]
fn a_registry_password_from_the_environment_never_shows_and_its_config_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, _registry, image)) = setup(dir.path()) else {
        return;
    };
    let secret = "s3cr3t-registry-Pa55word";
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = kit::tool("ugw-fetch");
    cmd.args([
        "--image",
        &image.by_digest(),
        "--registry-login-env",
        "ugw=REG_PASS",
    ])
    .env("REG_PASS", secret)
    .env("TMPDIR", &tmp);
    let out = kit::run(cmd);
    out.succeeds().never_shows(secret);
    assert_eq!(out.step("ugw-fetch").result["digest"], image.digest);
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "the private DOCKER_CONFIG must be removed: {left:?}"
    );
}

#[test]
fn dry_run_says_what_it_would_pull_and_pulls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_cleanup, registry, image)) = setup(dir.path()) else {
        return;
    };
    let before = registry.manifest_gets(&image.repo);
    let out = fetch_image(&[&image.tagged(), "--digest", &image.digest, "--dry-run"]);
    out.succeeds().stderr_has("would pull");
    let step = out.step("ugw-fetch");
    assert!(step.dry_run);
    assert_eq!(step.result["reference"], image.by_digest());
    assert_nothing_pulled(&registry, &image, before);
}

#[test]
fn the_readme_example_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    if docker::require_docker().is_none() {
        return;
    }
    let _cleanup = Cleanup::new();
    let registry = Registry::start(dir.path());
    let image = docker::build_demo_image(&registry, "app", "2.1.0", Behaviour::Healthy);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|line| line.starts_with("ugw-fetch --image"))
        .expect("README.md has the ugw-fetch --image example");
    let script = format!(
        "REGISTRY={} V={} DIGEST={}\n{line}",
        registry.host_port(),
        image.version,
        image.digest
    );
    let out = kit::bash(&script, dir.path());
    out.succeeds();
    let step = out.step("ugw-fetch");
    assert_eq!(step.result["reference"], image.by_digest());
    assert_eq!(step.result["version"], "2.1.0");
}
