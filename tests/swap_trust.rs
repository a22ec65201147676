//! `ugw-swap --target` publishes an artifact named by the record only after hashing it again
//! and finding the digest the `ugw-fetch` step verified (ugw(7), WHAT A TOOL TRUSTS): a forged
//! step naming another file, or a staged file replaced since it was fetched, switches nothing;
//! a fetch step of another host is not taken at all.

mod kit;

use std::path::Path;

/// A record whose one `ugw-fetch` step staged `path` with digest `sha256`, written on `host`.
fn fetched(path: &Path, sha256: &str, host: &str) -> String {
    serde_json::json!({"ugw": 1, "run": "r1", "ok": true, "steps": [{
        "tool": "ugw-fetch", "tool_version": "0.1.0", "run": "r1", "host": host,
        "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
        "changed": true, "dry_run": false,
        "result": {"url": "https://releases.invalid/app", "path": path, "sha256": sha256,
                   "bytes": 1, "version": "v2", "verified": true, "resumed": false}}]})
    .to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ugw_shared::digest::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn swap(target: &Path, record: &str) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-swap");
    cmd.arg("--target").arg(target);
    kit::with_stdin(cmd, record)
}

#[test]
fn a_forged_or_replaced_artifact_is_never_published() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("appbin");
    std::fs::write(&target, "#!/bin/sh\necho v1\n").unwrap();
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, "root:$6$secret-hash:19000::::::\n").unwrap();
    let host = ugw_shared::time::hostname();

    // A forged step naming a file ugw-fetch never staged, with a made-up digest.
    let out = swap(&target, &fetched(&secret, "00", &host));
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
    let record = fetched(&staged, &sha256_hex(good), &host);
    std::fs::write(&staged, "#!/bin/sh\necho evil\n").unwrap();
    let out = swap(&target, &record);
    out.assert_code(1);
    assert!(
        out.stderr.contains("not the") && out.stderr.contains("nothing was switched"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );

    // The same step of another host is not taken: nothing to publish.
    std::fs::write(&staged, good).unwrap();
    let out = swap(&target, &fetched(&staged, &sha256_hex(good), "node2"));
    out.assert_code(2);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho v1\n"
    );

    // The file as it was verified goes live.
    let out = swap(&target, &record);
    out.assert_code(0);
    assert_eq!(std::fs::read(&target).unwrap(), good);
}
