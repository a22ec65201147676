//! `make demo` (examples/demo.sh) run as an operator runs it: a real upgrade of the demo
//! service to v2 through one pipeline (baseline, backup, fetch, migrate, drain, swap, wait,
//! undrain, compare), a v3 that fails its health check and is rolled back and
//! restored, and nothing left behind (no process, no temp folder). The demo and `make
//! install` find the binaries where cargo says it builds (`CARGO_TARGET_DIR`), and an install
//! that cannot install everything fails.

use crate::kit;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo must finish well under the two minutes promised, on a loaded machine too.
const DEMO_LIMIT: Duration = Duration::from_secs(110);

#[test]
fn the_demo_upgrades_then_rolls_a_failed_release_back() {
    if !kit::require("python3") || !kit::require("setsid") || !kit::require("sha256sum") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let said = run_demo(tmp.path());

    let summary = |record: &str| -> Vec<&str> {
        said.lines()
            .skip_while(|line| !line.starts_with(record))
            .take_while(|line| line.starts_with(record) || line.starts_with("  "))
            .collect()
    };
    let has = |lines: &[&str], tool: &str, status: &str| {
        lines.iter().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.first() == Some(&tool) && words.get(1) == Some(&status)
        })
    };

    // v2 went in through the whole pipeline and answered its version.
    let v2 = summary("v2.json:");
    assert!(v2[0].starts_with("v2.json: ok, 11 steps"), "{v2:#?}");
    assert!(
        v2.iter()
            .any(|line| line.ends_with(r#"healthy: {"status":"ok","version":"v2.0.0"}"#)),
        "{v2:#?}"
    );
    assert!(
        v2.iter()
            .any(|line| line.ends_with("applied (pre): 2_add_items_note")),
        "{v2:#?}"
    );
    for tool in [
        "ugw-backup",
        "ugw-fetch",
        "ugw-migrate",
        "ugw-drain",
        "ugw-swap",
        "ugw-wait-healthy",
        "ugw-verify",
    ] {
        assert!(has(&v2, tool, "ok"), "{tool} in {v2:#?}");
    }
    // Drained before the swap, back after the health check; the client's slow request, in
    // flight when the drain began, was not cut off by the restart.
    let position = |text: &str| {
        v2.iter()
            .position(|line| line.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not in {v2:#?}"))
    };
    assert!(position("out of traffic (flag_file)") < position("current -> v2.0.0"));
    assert!(position("current -> v2.0.0") < position("back in traffic (flag_file"));
    assert!(position("baseline: 2 checks passed") < position("backed up to"));
    assert!(
        said.contains("the request in flight during the drain got 200\n"),
        "{said}"
    );
    // A baseline before the upgrade, and a comparison with it after.
    assert!(
        v2.iter()
            .any(|line| line.contains("ugw-verify") && line.ends_with("baseline: 2 checks passed")),
        "{v2:#?}"
    );
    assert!(
        v2.iter().any(|line| line
            .contains("verify: 6 checks passed; compared with the baseline: work p95_ms")
            && line.contains("memory memory_bytes")),
        "{v2:#?}"
    );
    // v3 failed at its health check; the rollback, the restore and the health check on v2 ran.
    let v3 = summary("v3.json:");
    assert!(v3[0].starts_with("v3.json: FAILED, 12 steps"), "{v3:#?}");
    let wait_failed = v3
        .iter()
        .position(|line| {
            line.trim_start().starts_with("ugw-wait-healthy") && line.contains("failed")
        })
        .unwrap_or_else(|| panic!("no failed wait in {v3:#?}"));
    let after: Vec<&str> = v3[wait_failed + 1..].to_vec();
    assert_eq!(
        after
            .iter()
            .map(|line| line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "))
            .collect::<Vec<_>>(),
        [
            "ugw-drain skipped",
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
            "ugw-drain ok"
        ],
        "{v3:#?}"
    );
    // The database: v2's column is there, v1's table gone (post-deploy), v3's column gone
    // (the restore); and what answers at the end is v2.
    assert!(
        said.contains("schema now: items(id, name, note)\n"),
        "{said}"
    );
    assert!(!said.contains("legacy_sessions("), "{said}");
    assert!(
        said.contains(r#"live: releases/v2.0.0 answers {"status":"ok","version":"v2.0.0"}"#),
        "{said}"
    );

    assert_nothing_left(&said, tmp.path());
}

/// The demo run as `make demo` runs it, with its temp folder under `tmp`: what it said. It
/// runs in a checkout with no `target/` of its own, `CARGO_TARGET_DIR` naming where cargo
/// built (as CI and shared machines set it) and no `UGW_BIN_DIR`: the demo must ask cargo.
fn run_demo(tmp: &Path) -> String {
    let bins = kit::bin("ugw-demo-app").parent().unwrap().to_path_buf();
    let checkout = tempfile::tempdir().unwrap();
    let root = checkout_without_target(checkout.path());
    let mut cmd = Command::new("bash");
    cmd.arg("examples/demo.sh")
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", bins.parent().unwrap())
        .env_remove("UGW_BIN_DIR")
        .env("TMPDIR", tmp)
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = kit::wait_bounded(cmd.spawn().unwrap(), DEMO_LIMIT);
    let took = started.elapsed();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{said}");
    eprintln!("the demo took {took:?}:\n{said}");
    said
}

/// A checkout of this repository under `dir` (a link to each of its entries) without the
/// `target/` folder, so that only cargo's answer can find the binaries.
fn checkout_without_target(dir: &Path) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = dir.join("ugw");
    std::fs::create_dir(&root).unwrap();
    for entry in std::fs::read_dir(repo).unwrap() {
        let name = entry.unwrap().file_name();
        if name != "target" && name != ".git" {
            std::os::unix::fs::symlink(repo.join(&name), root.join(&name)).unwrap();
        }
    }
    root
}

/// `make ARGS` in `dir` with `CARGO_TARGET_DIR` set to `target`, not in the jobserver of a
/// `make test` running this.
fn make(dir: &Path, target: &Path, args: &[&str]) -> kit::Outcome {
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::null());
    kit::run(cmd)
}

/// The tools `make install` installs: one per binary in src/bin/.
fn tools() -> Vec<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tools: Vec<String> = std::fs::read_dir(repo.join("src/bin"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .filter(|name| name.starts_with("ugw-"))
        .collect();
    tools.sort();
    tools
}

/// Every page in man/ of this kind (`1` or `7`).
fn pages(section: &str) -> Vec<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<String> = std::fs::read_dir(repo.join("man"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(&format!(".{section}")))
        .collect();
    pages.sort();
    pages
}

#[test]
fn make_install_installs_what_cargo_built_where_cargo_says_and_every_man_page() {
    if !kit::require("make") || !kit::require("python3") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    // A target folder elsewhere, as CARGO_TARGET_DIR names it. Its debug build is a small
    // program per tool that says where it was built: the installed copy must be that one,
    // not ./target's (a real debug build is 130 MB a tool; eight copies of it would fill a
    // CI disk). `-o install-build` keeps make from rebuilding them with cargo.
    let target = tmp.path().join("elsewhere");
    std::fs::create_dir_all(target.join("debug")).unwrap();
    for tool in tools() {
        let program = target.join("debug").join(&tool);
        std::fs::write(
            &program,
            format!("#!/bin/sh\necho {tool} built in elsewhere\n"),
        )
        .unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let dest = tmp.path().join("dest");
    let destdir = format!("DESTDIR={}", dest.display());
    let out = make(
        repo,
        &target,
        &[
            "-o",
            "install-build",
            "install",
            "PROFILE=debug",
            "PREFIX=/usr",
            &destdir,
        ],
    );
    out.succeeds();
    out.stdout_has(format!(
        "installed {} tools (debug build from {}/debug)",
        tools().len(),
        target.display()
    ));
    for tool in tools() {
        let installed = dest.join("usr/bin").join(&tool);
        let said = Command::new(&installed).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&said.stdout),
            format!("{tool} built in elsewhere\n"),
            "{}",
            installed.display()
        );
        for completion in [
            format!("usr/share/bash-completion/completions/{tool}"),
            format!("usr/share/zsh/site-functions/_{tool}"),
            format!("usr/share/fish/vendor_completions.d/{tool}.fish"),
        ] {
            assert!(dest.join(&completion).is_file(), "{completion}");
        }
    }
    // Every page, the subcommands' included (`man ugw-backup-create`).
    let man1 = pages("1");
    assert!(
        man1.contains(&"ugw-backup-create.1".to_string()),
        "{man1:?}"
    );
    assert!(man1.len() > tools().len(), "{man1:?}");
    for page in &man1 {
        let installed = std::fs::read(dest.join("usr/share/man/man1").join(page)).unwrap();
        assert_eq!(
            installed,
            std::fs::read(repo.join("man").join(page)).unwrap(),
            "{page}"
        );
    }
    assert!(dest.join("usr/share/man/man7/ugw.7").is_file());

    // `make uninstall` takes all of it away again, the subcommands' pages included.
    make(repo, &target, &["uninstall", "PREFIX=/usr", &destdir]).succeeds();
    let left: Vec<_> = walk(&dest).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

#[test]
fn an_install_that_cannot_install_everything_fails() {
    if !kit::require("make") || !kit::require("python3") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    // An install that cannot install every binary fails, and says so.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let nothing = tmp.path().join("nothing");
    let destdir = format!("DESTDIR={}", nothing.display());
    let out = make(
        repo,
        &empty,
        &[
            "-o",
            "install-build",
            "install",
            "PROFILE=debug",
            "PREFIX=/usr",
            &destdir,
        ],
    );
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    out.stderr_has("make: installing ugw-backup failed");
    let bin = nothing.join("usr/bin");
    assert!(
        std::fs::read_dir(&bin).map_or(true, |mut entries| entries.next().is_none()),
        "{} has files",
        bin.display()
    );

    // A checkout with no target/ of its own and no CARGO_TARGET_DIR: nothing built, and the
    // install fails instead of exiting 0.
    let checkout = checkout_without_target(tmp.path());
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(&checkout)
        .args(["-o", "install-build", "install", "PROFILE=debug", &destdir])
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::null());
    let out = kit::run(cmd);
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn make_builds_what_it_installs_and_the_debug_build_when_asked() {
    if !kit::require("make") || !kit::require("python3") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = Path::new("/srv/ci/cargo-target");
    let plan = |args: &[&str]| {
        let out = make(repo, target, &[&["-n"][..], args].concat());
        out.succeeds();
        out.stdout
    };
    // The release build by default; PROFILE=debug is the build `make demo` made (no rebuild
    // with thin LTO); both from the target folder cargo names.
    let release = plan(&["install"]);
    assert!(
        release.contains("cargo build --workspace --locked --release\n"),
        "{release}"
    );
    assert!(
        release.contains("/srv/ci/cargo-target/release/$t"),
        "{release}"
    );
    let debug = plan(&["install", "PROFILE=debug"]);
    assert!(
        debug.contains("cargo build --workspace --locked \n"),
        "{debug}"
    );
    assert!(!debug.contains("--release"), "{debug}");
    assert!(debug.contains("/srv/ci/cargo-target/debug/$t"), "{debug}");
    // The demo and the tests' log too.
    let demo = plan(&["demo"]);
    assert!(
        demo.contains("UGW_BIN_DIR=\"/srv/ci/cargo-target/debug\" bash examples/demo.sh"),
        "{demo}"
    );
    let test = plan(&["test"]);
    assert!(
        test.contains("/srv/ci/cargo-target/test-output.log"),
        "{test}"
    );
}

/// Every process the demo named (by "pid N") has stopped, and its temp folder is gone.
fn assert_nothing_left(said: &str, tmp: &Path) {
    let pids: Vec<i32> = said
        .split("pid ")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(pids.len() >= 4, "{pids:?} in {said}");
    for pid in pids {
        assert!(
            kit::gone(pid, Duration::from_secs(2)),
            "pid {pid} still runs"
        );
    }
    let left: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}
