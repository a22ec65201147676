//! Tests of the Docker test kit itself (`kit::docker`): the loopback registry answers, an image
//! built offline is pushed and gone locally, the plain docker CLI pulls it by digest and runs
//! it on the host network, its label names the version set, the bad variant answers 500, a
//! re-push of other content moves the tag to another digest, and the cleanup guard removes
//! what a test made under its prefix.

use crate::kit;
use crate::kit::docker::{self, Behaviour, Cleanup, ImageSpec, Registry};

#[test]
fn an_image_built_and_pushed_is_pulled_by_digest_and_serves_its_version() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cleanup = Cleanup::new();
    let registry = Registry::start(dir.path());
    let repo = cleanup.name("demo");
    let image = docker::build_demo_image(&registry, &repo, "1.4.2", Behaviour::Healthy);

    assert!(image.digest.starts_with("sha256:"), "{image:?}");
    assert!(
        !docker::image_present(&image.tagged()) && !docker::image_present(&image.by_digest()),
        "the pushed image must be gone locally, so a pull really pulls"
    );
    let before = registry.manifest_gets(&repo);
    docker::docker_ok(&["pull", &image.by_digest()]);
    assert!(
        registry.manifest_gets(&repo) > before,
        "the registry's log shows the pull: {}",
        registry.log()
    );
    let digests = docker::inspect(&image.by_digest(), "{{json .RepoDigests}}");
    assert!(digests.contains(&image.by_digest()), "{digests}");
    assert_eq!(
        docker::inspect(
            &image.by_digest(),
            &format!("{{{{index .Config.Labels \"{}\"}}}}", docker::VERSION_LABEL)
        ),
        "1.4.2"
    );

    let port = kit::free_port();
    docker::run_demo(&cleanup.name("app"), &image.by_digest(), port);
    let answered = kit::eventually(std::time::Duration::from_secs(5), || {
        docker::http_get(port, "/health/ready").is_some_and(|(code, _)| code == 200)
    });
    assert!(answered, "{}", docker::logs(&cleanup.name("app")));
    let (_, body) = docker::http_get(port, "/health/ready").unwrap();
    assert!(body.contains("\"version\":\"1.4.2\""), "{body}");
}

#[test]
fn the_bad_variant_answers_500_and_other_content_moves_the_tag() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cleanup = Cleanup::new();
    let registry = Registry::start(dir.path());
    let bad = docker::build_demo_image(&registry, &cleanup.name("bad"), "2.0.0", Behaviour::Bad);
    let port = kit::free_port();
    docker::run_demo(&cleanup.name("bad"), &bad.by_digest(), port);
    let failing = kit::eventually(std::time::Duration::from_secs(5), || {
        docker::http_get(port, "/health/ready").is_some_and(|(code, _)| code == 500)
    });
    assert!(failing, "{}", docker::logs(&cleanup.name("bad")));

    let good = docker::build_demo_image(
        &registry,
        &cleanup.name("moved"),
        "3.0.0",
        Behaviour::Healthy,
    );
    let other = docker::push_other_content(&registry, &good);
    assert_ne!(other.digest, good.digest, "other content, another digest");
    assert_eq!(other.tagged(), good.tagged(), "under the same tag");
    docker::docker_ok(&["pull", &good.tagged()]);
    let digests = docker::inspect(&good.tagged(), "{{json .RepoDigests}}");
    assert!(
        digests.contains(&other.digest) && !digests.contains(&good.digest),
        "the tag now names the other content: {digests}"
    );
}

#[test]
fn the_cleanup_guard_removes_containers_volumes_and_images_of_its_prefix() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let cleanup = Cleanup::new();
    let mut spec = ImageSpec::new(&cleanup.name("kept"), "1.0.0", Behaviour::Healthy);
    spec.files.push((
        "/migrations/0001_init.sql".into(),
        b"create table t (id integer);".to_vec(),
    ));
    let image = docker::build_image(&registry, &spec);
    docker::docker_ok(&["pull", &image.by_digest()]);
    let container = cleanup.name("idle");
    docker::docker_ok(&[
        "create",
        "--name",
        &container,
        "--network",
        "host",
        &image.by_digest(),
    ]);
    let volume = cleanup.name("data");
    docker::docker_ok(&["volume", "create", &volume]);
    let copied = dir.path().join("copied");
    docker::docker_ok(&["cp", &format!("{container}:/migrations"), kit::s(&copied)]);
    assert_eq!(
        std::fs::read_to_string(copied.join("0001_init.sql")).unwrap(),
        "create table t (id integer);",
        "an added file is in the image"
    );

    drop(cleanup);
    assert!(
        docker::docker(&["container", "inspect", &container]).code != 0,
        "container left"
    );
    assert!(
        docker::docker(&["volume", "inspect", &volume]).code != 0,
        "volume left"
    );
    assert!(!docker::image_present(&image.by_digest()), "image left");
}
