//! Hostile input on `ugw-swap --compose` (issue 24): a `--compose` FILE that is a FIFO or a
//! directory and a missing `--env-file` (exit 2 at once, nothing made), a corrupt pins file
//! (exit 2, nothing changed), and links planted where ugw keeps its own files (`.ugw/`, the
//! override, the pins file, the lock): refused, never followed, the file they point to
//! untouched. None of these reach Docker; the signal tests (SIGTERM, SIGHUP mid-swap) do, in
//! `compose_signals`.

use crate::kit;
use crate::kit::Kind;
use kit::{Outcome, s, tool};
use std::path::Path;
use std::time::Duration;

const IMAGE: &str =
    "127.0.0.1:5999/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `ugw-swap --compose FILE --project P --service api --image IMAGE ARGS` in `dir`.
fn swap(dir: &Path, file: &Path, args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.current_dir(dir)
        .args([
            "--compose",
            s(file),
            "--project",
            "hostile",
            "--service",
            "api",
        ])
        .args(["--image", IMAGE])
        .args(args);
    kit::run_within(cmd, Duration::from_secs(20))
}

/// A plain Compose file in `dir`.
fn compose_file(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("compose.yml");
    std::fs::write(
        &file,
        "services:\n  api:\n    image: \"127.0.0.1:5999/app:unpinned\"\n    network_mode: host\n",
    )
    .unwrap();
    file
}

#[test]
fn a_compose_file_that_is_a_fifo_or_a_directory_is_a_usage_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("compose.yml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = swap(dir.path(), &fifo, &[]);
    out.fails_with(Kind::Usage)
        .stderr_has("is not a regular file (a FIFO");
    assert!(out.elapsed < Duration::from_secs(10), "no hang on a FIFO");

    let folder = dir.path().join("project");
    std::fs::create_dir(&folder).unwrap();
    swap(dir.path(), &folder, &[])
        .fails_with(Kind::Usage)
        .stderr_has("is a directory, not a file");
    assert!(!dir.path().join(".ugw").exists(), "nothing made");
    assert!(!folder.join(".ugw").exists(), "nothing made");
}

#[test]
fn a_missing_env_file_is_a_usage_error_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = compose_file(dir.path());
    let missing = dir.path().join("prod.env");
    swap(dir.path(), &file, &["--env-file", s(&missing)])
        .fails_with(Kind::Usage)
        .stderr_has("--env-file")
        .stderr_has("no such file");
    swap(dir.path(), &file, &["--env-file", s(dir.path())])
        .fails_with(Kind::Usage)
        .stderr_has("is a directory");
    assert!(
        !dir.path().join(".ugw").exists(),
        "nothing pinned, no lock made"
    );
}

#[test]
fn a_corrupt_pins_file_is_a_bad_record_and_nothing_changes() {
    if !kit::require("docker-compose") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = compose_file(dir.path());
    let ours = dir.path().join(".ugw");
    std::fs::create_dir(&ours).unwrap();
    let pins = ours.join("hostile.pins.json");
    std::fs::write(&pins, "{\"current\": \"127.0.0.1:5999/app@sha").unwrap();
    swap(dir.path(), &file, &[])
        .fails_with(Kind::BadRecord)
        .stderr_has("is not ugw's pin file");
    assert_eq!(
        std::fs::read_to_string(&pins).unwrap(),
        "{\"current\": \"127.0.0.1:5999/app@sha",
        "the pins file is left as it was"
    );
    assert!(
        !ours.join("hostile.override.yml").exists(),
        "nothing pinned"
    );
}

#[test]
fn links_planted_where_ugw_keeps_its_files_are_refused_and_never_followed() {
    if !kit::require("docker-compose") {
        return;
    }
    let slots = [
        "--strategy",
        "start-first",
        "--port-env",
        "PORT",
        "--slots",
        "18081,18082",
    ];
    for (planted, args) in [
        (".ugw/hostile.override.yml", &[][..]),
        (".ugw/hostile-18082.override.yml", &slots[..]),
        (".ugw/hostile.pins.json", &[][..]),
        (".ugw/hostile.lock", &[][..]),
        (".ugw", &[][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = compose_file(dir.path());
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let target = if planted == ".ugw" {
            victim.clone()
        } else {
            std::fs::create_dir(dir.path().join(".ugw")).unwrap();
            let target = victim.join("file");
            std::fs::write(&target, "{\"current\": null}\n").unwrap();
            target
        };
        let link = dir.path().join(planted);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = swap(dir.path(), &file, args).case(planted);
        out.fails_with(Kind::Usage).stderr_has("is a symbolic link");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{planted}: the link is left as it was"
        );
        let names: Vec<String> = std::fs::read_dir(&victim)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if planted == ".ugw" {
            assert!(
                names.is_empty(),
                "{planted}: nothing made through it: {names:?}"
            );
        } else {
            assert_eq!(names, ["file"], "{planted}: nothing made beside the target");
            assert_eq!(
                std::fs::read_to_string(&target).unwrap(),
                "{\"current\": null}\n",
                "{planted}: the file it points to is untouched"
            );
        }
    }
}
