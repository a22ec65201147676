//! `ugw-backup create --volume NAME` and its in-place restore (issue 24), with the real
//! dockerd: a named volume backed up from its mount point, put back in place with the
//! containers that use it stopped for the restore and started after, a record whose create
//! step names another volume than its archive holds refused, and a missing volume named.

use crate::kit;
use crate::kit::docker::{self, Cleanup};
use std::path::{Path, PathBuf};

/// One test's Docker set-up: a temp folder, the guard of its Docker names, and a fresh named
/// volume (`data`) with the folder its contents are in. Fields drop in order: the folder, then
/// the guard (which removes the volume).
struct Lab {
    dir: tempfile::TempDir,
    cleanup: Cleanup,
    volume: String,
    mount: PathBuf,
}

impl Lab {
    /// `None` (the test skips, or fails under CI=true) without Docker.
    fn new() -> Option<Lab> {
        docker::require_docker()?;
        let cleanup = Cleanup::new();
        let (volume, mount) = new_volume(&cleanup, "data");
        Some(Lab {
            dir: tempfile::tempdir().unwrap(),
            cleanup,
            volume,
            mount,
        })
    }

    /// `ugw-backup create --volume` of the lab's volume into DIR/backups, which succeeds.
    fn backed_up(&self) -> kit::Outcome {
        let created = create_volume_backup(&self.volume, &self.dir.path().join("backups"));
        assert_eq!(created.code, 0, "{}", created.stderr);
        created
    }
}

/// A fresh named volume (removed by `cleanup`) and the folder its contents are in.
fn new_volume(cleanup: &Cleanup, what: &str) -> (String, PathBuf) {
    let name = cleanup.name(what);
    docker::docker_ok(&["volume", "create", &name]);
    let mount = PathBuf::from(docker::inspect(&name, "{{.Mountpoint}}"));
    assert!(mount.is_dir(), "{} is the volume's folder", mount.display());
    (name, mount)
}

/// The demo service, from a registry of the test's own (kept for the test: it drops the
/// image with it), running with `volume` at /data: the registry, the container's name, its id.
fn app_using(cleanup: &Cleanup, dir: &Path, volume: &str) -> (docker::Registry, String, String) {
    let registry = docker::Registry::start(dir);
    let image = docker::build_demo_image(
        &registry,
        &cleanup.name("app"),
        "1.0.0",
        docker::Behaviour::Healthy,
    );
    let container = cleanup.name("app-1");
    let listen = format!("127.0.0.1:{}", kit::free_port());
    let id = docker::docker_ok(&[
        "run",
        "-d",
        "--name",
        &container,
        "--network",
        "host",
        "-v",
        &format!("{volume}:/data"),
        &image.tagged(),
        "--listen",
        &listen,
    ]);
    (registry, container, id)
}

fn create_volume_backup(volume: &str, out: &Path) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-backup");
    cmd.args(["create", "--volume", volume, "--out", kit::s(out)]);
    kit::run(cmd)
}

fn restore_in_place(record: &str) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-backup");
    cmd.args(["restore", "--in-place"]);
    kit::with_stdin(cmd, record)
}

/// The restore's step says it stopped container `id` for the restore and started it after.
fn assert_stopped_and_started(step: &serde_json::Value, id: &str) {
    for what in ["stopped", "started"] {
        assert_eq!(
            step["result"]["containers"][what],
            serde_json::json!([id]),
            "{what}: {step}"
        );
    }
}

fn last_step(stdout: &str) -> serde_json::Value {
    let record: serde_json::Value = serde_json::from_str(stdout).expect("a record");
    record["steps"].as_array().unwrap().last().unwrap().clone()
}

#[test]
fn a_volume_is_backed_up_and_restored_in_place_with_its_container_stopped_and_started() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let (volume, mount) = (&lab.volume, &lab.mount);
    std::fs::create_dir(mount.join("uploads")).unwrap();
    std::fs::write(mount.join("uploads/a.txt"), "before the upgrade").unwrap();
    std::fs::write(mount.join("settings"), "v1").unwrap();

    let (_registry, container, id) = app_using(&lab.cleanup, lab.dir.path(), volume);
    assert_eq!(docker::inspect(&container, "{{.State.Running}}"), "true");
    let started_before = docker::inspect(&container, "{{.State.StartedAt}}");

    let created = lab.backed_up();
    let step = last_step(&created.stdout);
    assert_eq!(step["result"]["volumes"], serde_json::json!([volume]));
    assert_eq!(step["result"]["files"], 2, "{step}");
    let archive = PathBuf::from(step["result"]["archive"].as_str().unwrap());
    let manifest_path = PathBuf::from(format!(
        "{}.manifest.json",
        kit::s(&archive).trim_end_matches(".tar.gz")
    ));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(
        manifest["roots"][0]["volume"],
        volume.as_str(),
        "{manifest}"
    );

    // The upgrade changes the volume's contents; the failure path puts them back.
    std::fs::write(mount.join("uploads/a.txt"), "written by the new release").unwrap();
    std::fs::write(mount.join("uploads/b.txt"), "new").unwrap();
    std::fs::remove_file(mount.join("settings")).unwrap();

    let restored = restore_in_place(&created.stdout);
    assert_eq!(restored.code, 0, "{}{}", restored.stdout, restored.stderr);
    let step = last_step(&restored.stdout);
    assert_eq!(step["result"]["volumes"], serde_json::json!([volume]));
    assert_stopped_and_started(&step, &id);
    let mount_now = PathBuf::from(docker::inspect(volume, "{{.Mountpoint}}"));
    assert_eq!(
        std::fs::read_to_string(mount_now.join("uploads/a.txt")).unwrap(),
        "before the upgrade"
    );
    assert_eq!(
        std::fs::read_to_string(mount_now.join("settings")).unwrap(),
        "v1"
    );
    assert!(!mount_now.join("uploads/b.txt").exists());
    // Stopped for the restore (it started again after it), and running now, on the
    // restored contents.
    assert_eq!(docker::inspect(&container, "{{.State.Running}}"), "true");
    assert_ne!(
        docker::inspect(&container, "{{.State.StartedAt}}"),
        started_before,
        "the container was stopped for the restore and started after it"
    );
    assert!(
        restored.stderr.contains("stopped container")
            && restored.stderr.contains("started container"),
        "{}",
        restored.stderr
    );
}

#[test]
fn a_restore_whose_archive_holds_another_volume_than_its_step_names_is_refused() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let mount = &lab.mount;
    let (other, _) = new_volume(&lab.cleanup, "other");
    std::fs::write(mount.join("a.txt"), "backed up").unwrap();
    let created = lab.backed_up();
    std::fs::write(mount.join("a.txt"), "live").unwrap();

    // The record's create step says it backed up the other volume: the archive at its path
    // (the same digest) holds this one, so it is not that step's backup.
    let mut record: serde_json::Value = serde_json::from_str(&created.stdout).unwrap();
    record["steps"][0]["result"]["volumes"] = serde_json::json!([other]);
    let restored = restore_in_place(&record.to_string());
    assert_eq!(restored.code, 2, "{}{}", restored.stdout, restored.stderr);
    let step = last_step(&restored.stdout);
    assert_eq!(step["error"]["kind"], "bad_record", "{step}");
    assert!(restored.stderr.contains(&other), "{}", restored.stderr);
    assert_eq!(
        std::fs::read_to_string(mount.join("a.txt")).unwrap(),
        "live"
    );
}

#[test]
fn a_missing_volume_is_not_found_and_named() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let cleanup = Cleanup::new();
    let dir = tempfile::tempdir().unwrap();
    let absent = cleanup.name("absent");
    let created = create_volume_backup(&absent, &dir.path().join("backups"));
    assert_eq!(created.code, 1, "{}{}", created.stdout, created.stderr);
    let step = last_step(&created.stdout);
    assert_eq!(step["error"]["kind"], "not_found", "{step}");
    assert!(
        created.stderr.contains(&absent) && created.stderr.contains("no Docker volume"),
        "{}",
        created.stderr
    );
    assert!(!dir.path().join("backups").exists(), "nothing was written");
}

#[test]
fn a_failed_volume_restore_still_starts_the_containers_it_stopped_and_says_so() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let mount = &lab.mount;
    std::fs::create_dir(mount.join("uploads")).unwrap();
    std::fs::write(mount.join("uploads/a.txt"), "backed up").unwrap();
    let (_registry, container, id) = app_using(&lab.cleanup, lab.dir.path(), &lab.volume);
    let created = lab.backed_up();

    // A symlink planted at the volume's mount point: the restore refuses to write through
    // it, after the container was stopped for it.
    let elsewhere = mount.with_file_name("_data-elsewhere");
    std::fs::rename(mount, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, mount).unwrap();
    let restored = restore_in_place(&created.stdout);
    assert_eq!(restored.code, 1, "{}{}", restored.stdout, restored.stderr);
    let step = last_step(&restored.stdout);
    assert_eq!(step["error"]["kind"], "unsafe_input", "{step}");
    assert_stopped_and_started(&step, &id);
    assert_eq!(docker::inspect(&container, "{{.State.Running}}"), "true");
    assert!(
        std::fs::symlink_metadata(mount).unwrap().is_symlink(),
        "a refused restore leaves the mount point as it was"
    );
    // Put the volume's folder back, so that Docker can remove the volume.
    std::fs::remove_file(mount).unwrap();
    std::fs::rename(&elsewhere, mount).unwrap();
}
