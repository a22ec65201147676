//! ugw-swap killed (SIGKILL, at the failpoint `swap.after-current-switch`) between the switch
//! of `current` and its restart: the new release is current but the service still runs the
//! old one. A rerun of the same swap finds the note the killed run left in the release,
//! says so, and runs the restart (a failing one switches back, as the killed run would
//! have); without the note it would say "already current; nothing to do". Binary mode
//! (`--target`) the same, its note beside the target.

use crate::kit;

use kit::{current, s, staged_release, swap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

/// A releases root on v1 (restarted once), and v2 staged to swap to.
struct Lab {
    dir: tempfile::TempDir,
    root: PathBuf,
    v2: PathBuf,
    /// One line per restart: the release `current` named when it ran.
    restarted: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        let v1 = staged_release(dir.path(), "v1", "one");
        let v2 = staged_release(dir.path(), "v2", "two");
        let restarted = dir.path().join("restarted");
        let lab = Lab {
            dir,
            root,
            v2,
            restarted,
        };
        let args = lab.args(&v1, "v1", &lab.restart());
        swap(&args.iter().map(String::as_str).collect::<Vec<_>>()).assert_code(0);
        assert_eq!(lab.restarts(), ["releases/v1"]);
        lab
    }

    /// A restart that notes which release is current.
    fn restart(&self) -> String {
        format!(
            "readlink '{}' >> '{}'",
            s(&self.root.join("current")),
            s(&self.restarted)
        )
    }

    fn args(&self, from: &Path, release: &str, restart: &str) -> Vec<String> {
        [
            "--in",
            "none",
            "--root",
            s(&self.root),
            "--from",
            s(from),
            "--release",
            release,
            "--restart",
            restart,
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// The swap to v2 with `restart`, killed by its failpoint right after the switch.
    fn swap_killed_after_the_switch(&self) {
        killed_after_the_switch(&self.args(&self.v2, "v2", &self.restart()));
        assert_eq!(current(&self.root), "releases/v2");
        assert_eq!(
            self.restarts(),
            ["releases/v1"],
            "restarted before the kill"
        );
    }

    /// The swap to v2 again (no failpoint), restarting with `restart`.
    fn rerun(&self, restart: &str) -> kit::Outcome {
        let args = self.args(&self.v2, "v2", restart);
        swap(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn restarts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.restarted)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The notes ugw-swap keeps in releases/v2 (its own names begin with `.ugw-`; the
    /// release's marker and ugw-fetch's manifest left out).
    fn notes_in_v2(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("releases/v2"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| {
                name.starts_with(".ugw-") && name != ".ugw-release" && name != ".ugw-fetch"
            })
            .collect();
        names.sort();
        names
    }
}

#[test]
fn a_rerun_after_a_kill_between_the_switch_and_the_restart_restarts() {
    let lab = Lab::new();
    lab.swap_killed_after_the_switch();

    let out = lab.rerun(&lab.restart());
    out.assert_code(0);
    assert!(
        out.stderr.contains("interrupted before its restart") && out.stderr.contains("restarting"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("nothing to do"), "{}", out.stderr);
    let step = out.last_step();
    assert_eq!(step.result["restarted"], true, "{step:#?}");
    assert_eq!(step.result["current"], "v2");
    assert_eq!(step.result["previous"], "v1");
    assert!(step.changed);
    assert_eq!(lab.restarts(), ["releases/v1", "releases/v2"]);
    assert!(lab.notes_in_v2().is_empty(), "{:?}", lab.notes_in_v2());

    // Done now: a further rerun has nothing to do, and restarts nothing.
    let again = lab.rerun(&lab.restart());
    again.assert_code(0);
    assert!(
        again.stderr.contains("already current; nothing to do"),
        "{}",
        again.stderr
    );
    assert_eq!(again.last_step().result["restarted"], false);
    assert_eq!(lab.restarts(), ["releases/v1", "releases/v2"]);
    let _ = &lab.dir;
}

#[test]
fn a_rerun_whose_restart_fails_switches_back_to_the_release_before() {
    let lab = Lab::new();
    lab.swap_killed_after_the_switch();

    let failing = format!("{}; exit 7", lab.restart());
    let out = lab.rerun(&failing);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "restart_failed", "{step:#?}");
    assert_eq!(step.result["current"], "v1");
    assert_eq!(step.result["marked_failed"], "v2");
    assert_eq!(current(&lab.root), "releases/v1");
    // The restart after the switch (v2), then the one after switching back (v1).
    assert_eq!(
        lab.restarts(),
        ["releases/v1", "releases/v2", "releases/v1"]
    );
    assert_eq!(lab.notes_in_v2(), [".ugw-failed"]);
}

#[test]
fn a_rerun_with_no_restart_says_the_release_was_never_restarted() {
    let lab = Lab::new();
    lab.swap_killed_after_the_switch();

    let mut cmd = kit::tool("ugw-swap");
    cmd.args(&lab.args(&lab.v2, "v2", "true")[..8]);
    let out = kit::run(cmd);
    out.assert_code(0);
    assert!(
        out.stderr.contains("interrupted before its restart")
            && out.stderr.contains("give --restart or --start"),
        "{}",
        out.stderr
    );
    assert_eq!(lab.restarts(), ["releases/v1"]);
    // Still noted: a rerun with its restart restarts.
    assert_eq!(lab.notes_in_v2(), [".ugw-restart-pending"]);
    lab.rerun(&lab.restart()).assert_code(0);
    assert_eq!(lab.restarts(), ["releases/v1", "releases/v2"]);
}

/// The same through a pipeline: the release is what this run's `ugw-fetch --extract` staged,
/// moved into releases/ by the killed swap. Its rerun on the same record finds the staged
/// folder gone and the release there (what the fetch step vouched for), and restarts it.
#[test]
fn a_rerun_on_the_fetch_record_restarts_the_release_the_killed_run_moved_in() {
    let lab = Lab::new();
    let build = lab.dir.path().join("build");
    std::fs::create_dir_all(build.join("bin")).unwrap();
    std::fs::write(build.join("bin/app"), "two").unwrap();
    let archive = lab.dir.path().join("app-v2.tar.gz");
    let packed = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(&build), "bin"])
        .status()
        .unwrap();
    assert!(packed.success());
    let fetched = kit::run(kit::fetch_extract_cmd(
        &archive,
        &lab.dir.path().join("fetched"),
    ));
    fetched.assert_code(0);
    let record = fetched.stdout.clone();
    let args = [
        "--root",
        s(&lab.root),
        "--release",
        "v2",
        "--restart",
        &lab.restart(),
    ];

    let mut killed = kit::tool("ugw-swap");
    killed
        .args(args)
        .env("UGW_FAILPOINT", "swap.after-current-switch");
    let out = kit::with_stdin(killed, &record);
    assert_eq!(out.code, -1, "not killed at the failpoint: {}", out.stderr);
    assert_eq!(current(&lab.root), "releases/v2");
    assert!(!lab.dir.path().join("fetched/out").exists(), "not moved");
    assert_eq!(lab.restarts(), ["releases/v1"]);

    let mut rerun = kit::tool("ugw-swap");
    rerun.args(args);
    let out = kit::with_stdin(rerun, &record);
    out.assert_code(0);
    assert!(
        out.stderr.contains("interrupted before its restart"),
        "{}",
        out.stderr
    );
    assert_eq!(out.last_step().result["restarted"], true);
    assert_eq!(lab.restarts(), ["releases/v1", "releases/v2"]);
    assert!(lab.notes_in_v2().is_empty(), "{:?}", lab.notes_in_v2());
}

// ---- binary mode (`--target`): the note is `TARGET.ugw-restart-pending`, beside the
// `TARGET.ugw-prev` the install keeps, naming the binary installed and the one before.

/// A target `app` on v1, v2 staged to swap to, and a restart that runs the target.
struct BinaryLab {
    dir: tempfile::TempDir,
}

const BINARY_V1: &str = "#!/bin/sh\necho v1\n";
const BINARY_V2: &str = "#!/bin/sh\necho v2\n";

impl BinaryLab {
    fn new() -> BinaryLab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app"), BINARY_V1).unwrap();
        std::fs::create_dir(dir.path().join("staging")).unwrap();
        std::fs::write(dir.path().join("staging/v2"), BINARY_V2).unwrap();
        BinaryLab { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A restart that runs the binary in place: its output, one line per restart.
    fn restart(&self) -> String {
        format!(
            "sh '{}' >> '{}'",
            s(&self.path("app")),
            s(&self.path("restarted"))
        )
    }

    fn args(&self, from: &str, restart: &str) -> Vec<String> {
        let from = self.path(from);
        [
            "--in",
            "none",
            "--target",
            s(&self.path("app")),
            "--from",
            s(&from),
            "--restart",
            restart,
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// The swap to v2, killed by its failpoint right after the install.
    fn swap_killed_after_the_install(&self) {
        killed_after_the_switch(&self.args("staging/v2", &self.restart()));
        assert_eq!(self.live(), BINARY_V2);
        assert!(self.restarts().is_empty(), "restarted before the kill");
        assert!(self.note().exists(), "no note of the pending restart");
    }

    fn rerun(&self, from: &str, restart: &str) -> kit::Outcome {
        let args = self.args(from, restart);
        swap(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn live(&self) -> String {
        std::fs::read_to_string(self.path("app")).unwrap()
    }

    fn note(&self) -> PathBuf {
        self.path("app.ugw-restart-pending")
    }

    fn restarts(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("restarted"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn binary_a_rerun_after_a_kill_between_the_install_and_the_restart_restarts() {
    let lab = BinaryLab::new();
    lab.swap_killed_after_the_install();

    let out = lab.rerun("staging/v2", &lab.restart());
    out.assert_code(0);
    assert!(
        out.stderr.contains("interrupted before its restart") && out.stderr.contains("restarting"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("nothing to do"), "{}", out.stderr);
    let step = out.last_step();
    assert_eq!(step.result["restarted"], true, "{step:#?}");
    assert_eq!(step.result["current"], kit::sha256(BINARY_V2.as_bytes()));
    assert_eq!(step.result["previous"], kit::sha256(BINARY_V1.as_bytes()));
    assert!(step.changed);
    assert_eq!(lab.restarts(), ["v2"]);
    assert!(!lab.note().exists(), "the note outlived its restart");

    // Done now: a further rerun has nothing to do, and restarts nothing.
    let again = lab.rerun("staging/v2", &lab.restart());
    again.assert_code(0);
    assert!(
        again.stderr.contains("already this binary; nothing to do"),
        "{}",
        again.stderr
    );
    assert_eq!(again.last_step().result["restarted"], false);
    assert_eq!(lab.restarts(), ["v2"]);
}

#[test]
fn binary_a_rerun_whose_restart_fails_puts_the_binary_before_back() {
    let lab = BinaryLab::new();
    lab.swap_killed_after_the_install();

    let failing = format!("{}; exit 7", lab.restart());
    let out = lab.rerun("staging/v2", &failing);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "restart_failed", "{step:#?}");
    assert_eq!(step.result["current"], kit::sha256(BINARY_V1.as_bytes()));
    assert_eq!(
        step.result["marked_failed"],
        kit::sha256(BINARY_V2.as_bytes())
    );
    assert_eq!(lab.live(), BINARY_V1);
    assert_eq!(
        std::fs::read_to_string(lab.path("app.ugw-failed")).unwrap(),
        BINARY_V2
    );
    // The restart of v2, then the one after putting v1 back.
    assert_eq!(lab.restarts(), ["v2", "v1"]);
    assert!(!lab.note().exists(), "the note outlived the switch back");
}

/// A note left by a killed swap to v2, and then v3 put in place by hand: the note is not
/// this binary's, so a swap to v3 says so and does nothing (no restart, no switch back).
#[test]
fn binary_a_note_for_another_binary_is_ignored_with_a_warning() {
    let lab = BinaryLab::new();
    lab.swap_killed_after_the_install();
    let v3 = "#!/bin/sh\necho v3\n";
    std::fs::write(lab.path("staging/v3"), v3).unwrap();
    std::fs::write(lab.path("app"), v3).unwrap();

    let out = lab.rerun("staging/v3", &lab.restart());
    out.assert_code(0);
    assert!(
        out.stderr
            .contains("app.ugw-restart-pending is for another binary")
            && out.stderr.contains("ignored")
            && out.stderr.contains("already this binary; nothing to do"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("restarting it now"), "{}", out.stderr);
    assert_eq!(out.last_step().result["restarted"], false);
    assert!(lab.restarts().is_empty());
    assert_eq!(lab.live(), v3);
}

/// A rerun with no restart to run says the binary was never restarted, and keeps the note
/// for a rerun that has one.
#[test]
fn binary_a_rerun_with_no_restart_says_the_binary_was_never_restarted() {
    let lab = BinaryLab::new();
    lab.swap_killed_after_the_install();

    // The same swap without --restart (the last two arguments).
    let args = lab.args("staging/v2", "true");
    let out = swap(&args[..6].iter().map(String::as_str).collect::<Vec<_>>());
    out.assert_code(0);
    assert!(
        out.stderr.contains("interrupted before its restart")
            && out.stderr.contains("give --restart or --start"),
        "{}",
        out.stderr
    );
    assert!(lab.restarts().is_empty());
    assert!(lab.note().exists(), "the note went with no restart run");
    lab.rerun("staging/v2", &lab.restart()).assert_code(0);
    assert_eq!(lab.restarts(), ["v2"]);
}

/// A symlink planted where the note goes is replaced by the note, never written through.
#[test]
fn binary_the_note_never_follows_a_planted_symlink() {
    let lab = BinaryLab::new();
    std::fs::write(lab.path("victim"), "untouched").unwrap();
    std::os::unix::fs::symlink(lab.path("victim"), lab.note()).unwrap();
    lab.swap_killed_after_the_install();
    assert_eq!(
        std::fs::read_to_string(lab.path("victim")).unwrap(),
        "untouched"
    );
    assert!(std::fs::symlink_metadata(lab.note()).unwrap().is_file());
    lab.rerun("staging/v2", &lab.restart()).assert_code(0);
    assert_eq!(lab.restarts(), ["v2"]);
}

/// `ugw-swap ARGS` with its failpoint armed right after the switch: it must die there, by
/// SIGKILL.
fn killed_after_the_switch(args: &[String]) {
    let out = kit::tool("ugw-swap")
        .args(args)
        .env("UGW_FAILPOINT", "swap.after-current-switch")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "not killed at the failpoint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
