//! What ugw-swap publishes from a ugw-fetch step, through the real binaries on real folders
//! (ugw(7), WHAT A TOOL TRUSTS; issue 16 item 26, issue 20 item 6): an artifact is hashed
//! again against the step in release-folder mode as in binary mode (a forged step, a file
//! replaced since, a step of another host), an extracted folder is checked against the
//! manifest ugw-fetch recorded, and an artifact, staging folder or folder on the way that
//! another user can write is refused. A refusal switches nothing.

use crate::kit;

use kit::{Outcome, current, run, s, tool, with_stdin};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A record whose one ok `ugw-fetch` step staged `path` with `sha256` (and an extracted
/// folder's `manifest_sha256`), in this run on this host.
fn fetch_step(path: &Path, sha256: &str, manifest_sha256: Option<&str>) -> String {
    fetch_step_on(&ugw_shared::time::hostname(), path, sha256, manifest_sha256)
}

/// `fetch_step`, written on `host`.
fn fetch_step_on(host: &str, path: &Path, sha256: &str, manifest_sha256: Option<&str>) -> String {
    let mut result = serde_json::json!({"url": "https://releases.invalid/app-v2.tar.gz",
        "path": path, "sha256": sha256, "bytes": 1, "version": "v2", "verified": true,
        "resumed": false});
    if let Some(manifest) = manifest_sha256 {
        result["manifest_sha256"] = manifest.into();
    }
    serde_json::json!({"ugw": 1, "run": "r1", "ok": true, "steps": [{
        "tool": "ugw-fetch", "tool_version": "0.1.0", "run": "r1", "host": host,
        "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
        "changed": true, "dry_run": false, "result": result}]})
    .to_string()
}

fn swap_on(args: &[&str], record: &str) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.args(args);
    with_stdin(cmd, record)
}

fn releases(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A root whose `current` is `releases/v1`, made by ugw-swap itself.
fn root_at_v1(dir: &Path) -> PathBuf {
    let root = dir.join("app");
    let v1 = dir.join("v1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("app.txt"), "one").unwrap();
    let mut cmd = tool("ugw-swap");
    cmd.args(["--root", s(&root), "--from", s(&v1), "--release", "v1"]);
    run(cmd).succeeds();
    root
}

/// `app-2.0.0.tar.gz` holding `bin/app` and `conf/app.toml`, fetched and extracted by the
/// real ugw-fetch into `dir/staging/app-2.0.0`: the folder and the record's stdout.
fn fetched_release(dir: &Path) -> (PathBuf, String) {
    let tree = dir.join("build/app-v2");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("conf")).unwrap();
    std::fs::write(tree.join("bin/app"), "#!/bin/sh\necho v2\n").unwrap();
    chmod(&tree.join("bin/app"), 0o755);
    std::fs::write(tree.join("conf/app.toml"), "port = 8080\n").unwrap();
    let archive = dir.join("app-2.0.0.tar.gz");
    let made = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(&tree), "bin", "conf"])
        .status()
        .unwrap();
    assert!(made.success());
    let digest = ugw_shared::digest::sha256_file(&archive).unwrap();
    let staging = dir.join("staging");
    let mut cmd = tool("ugw-fetch");
    cmd.args([
        "--url",
        &format!("file://{}", s(&archive)),
        "--sha256",
        &digest,
        "--dest",
        s(&staging),
        "--extract",
    ]);
    let out = run(cmd);
    let step = out.succeeds().last_step();
    assert!(
        step.result["manifest_sha256"].is_string(),
        "the step vouches for the tree: {:?}",
        step.result
    );
    (staging.join("app-2.0.0"), out.stdout.clone())
}

/// Issue 16 item 26 in binary mode (`--target`): a forged step naming a file ugw-fetch never
/// staged, or a staged file replaced since it was verified, switches nothing; a fetch step of
/// another host is not taken at all.
#[test]
fn a_forged_or_replaced_artifact_is_never_published() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("appbin");
    std::fs::write(&target, "#!/bin/sh\necho v1\n").unwrap();
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, "root:$6$secret-hash:19000::::::\n").unwrap();
    let binary = |record: &str| swap_on(&["--target", s(&target)], record);

    // A forged step naming a file ugw-fetch never staged, with a made-up digest.
    let out = binary(&fetch_step(&secret, "00", None));
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error.as_ref().unwrap().kind, "checksum_mismatch");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );

    // A staged file replaced after it was verified: the step's digest is the original's.
    let staged = dir.path().join("app-v2");
    let good = b"#!/bin/sh\necho v2\n";
    std::fs::write(&staged, good).unwrap();
    let record = fetch_step(&staged, &kit::sha256(good), None);
    std::fs::write(&staged, "#!/bin/sh\necho evil\n").unwrap();
    let out = binary(&record);
    out.assert_code(1)
        .stderr_has("not the")
        .stderr_has("nothing was switched");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );

    // The same step of another host is not taken: nothing to publish.
    std::fs::write(&staged, good).unwrap();
    let out = binary(&fetch_step_on("node2", &staged, &kit::sha256(good), None));
    out.assert_code(2);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );

    // The file as it was verified goes live.
    let out = binary(&record);
    out.succeeds();
    assert_eq!(std::fs::read(&target).unwrap(), good);
}

/// Issue 16 item 26 in release-folder mode: a forged step naming a file ugw-fetch never
/// staged (a secret), with a made-up digest, publishes nothing under --root.
#[test]
fn a_forged_fetch_step_publishes_nothing_into_the_release_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_at_v1(dir.path());
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, "root:$6$secret-hash:19000::::::\n").unwrap();
    chmod(&secret, 0o640);
    let out = swap_on(&["--root", s(&root)], &fetch_step(&secret, "00", None));
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "checksum_mismatch");
    assert!(!step.changed);
    assert_eq!(current(&root), "releases/v1");
    assert_eq!(releases(&root), ["v1"], "nothing staged, not even aside");

    // The step's digest right: the file it vouches for goes live.
    let digest = ugw_shared::digest::sha256_file(&secret).unwrap();
    let out = swap_on(&["--root", s(&root)], &fetch_step(&secret, &digest, None));
    out.succeeds();
    assert_eq!(current(&root), "releases/v2");
}

/// An extracted folder carries no digest of its own: ugw-fetch records its manifest's, and
/// ugw-swap checks the folder against it. A file changed, added or removed after the fetch
/// is named, and nothing is switched; the folder as fetched goes live.
#[test]
fn an_extracted_folder_is_published_only_as_ugw_fetch_staged_it() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = root_at_v1(dir.path());
    let (folder, record) = fetched_release(dir.path());

    std::fs::write(folder.join("bin/app"), "#!/bin/sh\necho evil\n").unwrap();
    std::fs::write(folder.join("bin/helper"), "planted").unwrap();
    let out = swap_on(&["--root", s(&root)], &record);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "checksum_mismatch");
    let message = &step.error.as_ref().unwrap().message;
    assert!(
        message.contains("bin/app (changed)") && message.contains("bin/helper (added)"),
        "{message}"
    );
    assert_eq!(current(&root), "releases/v1");
    assert_eq!(releases(&root), ["v1"]);

    // The same folder given as --from is still the fetched artifact: checked the same way.
    let out = swap_on(
        &["--root", s(&root), "--from", s(&folder), "--release", "v2"],
        &record,
    );
    assert_eq!(
        out.assert_code(1).last_step().error_kind(),
        "checksum_mismatch"
    );
    assert_eq!(current(&root), "releases/v1");

    // A mode change of the executable bit is a change too.
    std::fs::remove_file(folder.join("bin/helper")).unwrap();
    std::fs::write(folder.join("bin/app"), "#!/bin/sh\necho v2\n").unwrap();
    chmod(&folder.join("bin/app"), 0o644);
    let out = swap_on(&["--root", s(&root)], &record);
    assert_eq!(
        out.assert_code(1).last_step().error_kind(),
        "checksum_mismatch"
    );

    // Put back as fetched: it goes live.
    chmod(&folder.join("bin/app"), 0o755);
    let out = swap_on(&["--root", s(&root)], &record);
    out.succeeds();
    assert_eq!(current(&root), "releases/2.0.0");
    assert_eq!(
        std::fs::read_to_string(root.join("current/bin/app")).unwrap(),
        "#!/bin/sh\necho v2\n"
    );
}

/// A folder named by a step without a manifest (an older ugw-fetch, or forged) cannot be
/// checked: refused.
#[test]
fn a_folder_the_step_records_no_manifest_of_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_at_v1(dir.path());
    let folder = dir.path().join("elsewhere");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("data"), "not a release").unwrap();
    let out = swap_on(&["--root", s(&root)], &fetch_step(&folder, "00", None));
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "checksum_mismatch");
    assert!(
        step.error.as_ref().unwrap().message.contains("no manifest"),
        "{:?}",
        step.error
    );
    assert_eq!(current(&root), "releases/v1");
    assert_eq!(releases(&root), ["v1"]);
}

/// Issue 20 item 6: a staging folder or artifact another user can write is refused, as sshd
/// refuses such an `authorized_keys`, in both modes, with or without a fetch step.
#[test]
fn an_artifact_another_user_can_write_is_refused_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let target = dir.path().join("appbin");
    std::fs::write(&target, "#!/bin/sh\necho v1\n").unwrap();
    chmod(&target, 0o755);
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let artifact = staging.join("app");
    let good = "#!/bin/sh\necho v2\n";
    std::fs::write(&artifact, good).unwrap();
    chmod(&artifact, 0o755);
    let digest = ugw_shared::digest::sha256_file(&artifact).unwrap();
    let record = fetch_step(&artifact, &digest, None);
    let root = root_at_v1(dir.path());

    let refused = |out: &Outcome, why: &str| {
        let step = out.assert_code(1).last_step();
        assert_eq!(step.error_kind(), "unsafe_input");
        let message = &step.error.as_ref().unwrap().message;
        assert!(message.contains(why), "{message}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "#!/bin/sh\necho v1\n"
        );
        assert_eq!(current(&root), "releases/v1");
    };
    let binary = || swap_on(&["--target", s(&target)], &record);
    let binary_from = || {
        swap_on(
            &["--target", s(&target), "--from", s(&artifact)],
            &serde_json::json!({"ugw": 1, "run": "r2", "ok": true, "steps": []}).to_string(),
        )
    };
    let release = || swap_on(&["--root", s(&root)], &record);

    // The staging folder writable by everyone (the README's old /tmp/staging, made by hand).
    chmod(&staging, 0o777);
    refused(&binary(), "writable by everyone");
    refused(&binary_from(), "writable by everyone");
    refused(&release(), "writable by everyone");
    // Writable by its group.
    chmod(&staging, 0o775);
    refused(&binary(), "writable by its group");
    chmod(&staging, 0o755);
    // The artifact itself writable by others.
    chmod(&artifact, 0o757);
    refused(&binary(), "writable by everyone");
    refused(&release(), "writable by everyone");
    chmod(&artifact, 0o755);
    // The staging folder owned by another user (nobody), even with a strict mode.
    std::os::unix::fs::chown(&staging, Some(65534), Some(65534)).unwrap();
    refused(&binary(), "belongs to uid 65534");
    refused(&release(), "belongs to uid 65534");
    std::os::unix::fs::chown(&staging, Some(0), Some(0)).unwrap();
    // The artifact owned by another user.
    std::os::unix::fs::chown(&artifact, Some(65534), None).unwrap();
    refused(&binary(), "belongs to uid 65534");
    std::os::unix::fs::chown(&artifact, Some(0), None).unwrap();
    // A symbolic link on the way owned by another user is not followed.
    let link = dir.path().join("via");
    std::os::unix::fs::symlink(&staging, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    refused(
        &swap_on(
            &["--target", s(&target), "--from", s(&link.join("app"))],
            &serde_json::json!({"ugw": 1, "run": "r2", "ok": true, "steps": []}).to_string(),
        ),
        "symbolic link owned by uid 65534",
    );

    // A folder inside a release another user could write into.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/app"), "x").unwrap();
    chmod(&tree.join("bin"), 0o777);
    refused(
        &swap_on(
            &["--root", s(&root), "--from", s(&tree), "--release", "v3"],
            &serde_json::json!({"ugw": 1, "run": "r2", "ok": true, "steps": []}).to_string(),
        ),
        "bin is writable by everyone",
    );

    // Put right, both modes publish it.
    binary().succeeds();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), good);
    release().succeeds();
    assert_eq!(current(&root), "releases/v2");
}

/// The attack of issue 20 item 6 through the real tools: the staging folder is another
/// user's to write; after ugw-fetch verified the file, that user replaces it. It is never
/// installed (refused for the folder, and the digest would not match either).
#[test]
fn a_file_replaced_by_another_user_after_the_fetch_is_never_installed() {
    if !kit::require("setpriv") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let source = dir.path().join("app-v2");
    std::fs::write(&source, "#!/bin/sh\necho v2\n").unwrap();
    let digest = ugw_shared::digest::sha256_file(&source).unwrap();
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let mut cmd = tool("ugw-fetch");
    cmd.args([
        "--url",
        &format!("file://{}", s(&source)),
        "--sha256",
        &digest,
        "--dest",
        s(&staging),
        "--mode",
        "755",
    ]);
    let fetched = run(cmd);
    fetched.succeeds();
    let staged = staging.join("app-v2");
    assert!(staged.exists());
    // Another user (nobody) may write the staging folder: they swap the file for their own.
    std::os::unix::fs::chown(&staging, Some(65534), Some(65534)).unwrap();
    let evil = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "printf '#!/bin/sh\\necho evil\\n' > {0}.new && chmod 755 {0}.new && mv -f {0}.new {0}",
            s(&staged)
        ))
        .status()
        .unwrap();
    assert!(evil.success());
    let target = dir.path().join("appbin");
    std::fs::write(&target, "#!/bin/sh\necho v1\n").unwrap();
    let out = swap_on(&["--target", s(&target)], &fetched.stdout);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "unsafe_input");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );
    // Even once the folder is root's again, the replaced file is not what was verified.
    std::os::unix::fs::chown(&staging, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(&staged, Some(0), Some(0)).unwrap();
    let out = swap_on(&["--target", s(&target)], &fetched.stdout);
    assert_eq!(
        out.assert_code(1).last_step().error_kind(),
        "checksum_mismatch"
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );
}
