//! minisign conformance: keys and signatures made at test time by the `minisign` CLI (0.11),
//! prehashed (its default) and legacy (`-S -l`), over an artifact and over a SHA256SUMS file,
//! good and bad (tampered file, wrong key, edited trusted comment). For every case
//! `minisign -V` runs side by side as the reference and ugw-fetch must give the same verdict.

use crate::kit;

use kit::{Outcome, run, s, tool};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A minisign key pair made by `minisign -G -W` (no password) in its own folder.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        minisign(dir.path(), &["-G", "-W", "-p", "key.pub", "-s", "key.sec"]);
        Keys { dir }
    }

    fn public(&self) -> PathBuf {
        self.dir.path().join("key.pub")
    }

    /// Sign `file` into `file.minisig`; `legacy` is `minisign -S -l`.
    fn sign(&self, file: &Path, legacy: bool) -> PathBuf {
        let sig = PathBuf::from(format!("{}.minisig", file.display()));
        let key = self.dir.path().join("key.sec");
        let mut args = vec!["-S", "-s", s(&key), "-m", s(file), "-x", s(&sig)];
        args.extend(["-t", "release app 1.0"]);
        if legacy {
            args.push("-l");
        }
        minisign(self.dir.path(), &args);
        sig
    }

    /// The reference verdict: `minisign -V` of `file` with `sig` and this key.
    fn minisign_accepts(&self, file: &Path, sig: &Path) -> bool {
        Command::new("minisign")
            .args([
                "-V",
                "-q",
                "-p",
                s(&self.public()),
                "-m",
                s(file),
                "-x",
                s(sig),
            ])
            .output()
            .unwrap()
            .status
            .success()
    }
}

fn minisign(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("minisign");
    cmd.args(args).current_dir(dir);
    kit::succeeds(cmd);
}

/// The algorithm a `.minisig` names: `Ed` (legacy) or `ED` (prehashed), the first two
/// bytes of its base64 line (its first four characters hold three bytes).
fn algorithm(sig: &Path) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let text = std::fs::read_to_string(sig).unwrap();
    let line = text.lines().nth(1).unwrap();
    let sextet = |c: u8| ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
    let bits = line
        .bytes()
        .take(4)
        .fold(0u32, |acc, c| (acc << 6) | sextet(c));
    String::from_utf8(vec![(bits >> 16) as u8, (bits >> 8) as u8]).unwrap()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", s(path))
}

/// `ugw-fetch` of `artifact`, signed by `sig` (of the artifact, or of `sums` if given).
fn fetch(
    artifact: &Path,
    sums: Option<&Path>,
    key: &Path,
    sig: &Path,
) -> (Outcome, tempfile::TempDir) {
    let dest = tempfile::tempdir().unwrap();
    let mut cmd = tool("ugw-fetch");
    cmd.args(["--url", &file_url(artifact), "--dest", s(dest.path())])
        .args([
            "--minisign-pubkey",
            s(key),
            "--minisign-sig-url",
            &file_url(sig),
        ]);
    if let Some(sums) = sums {
        cmd.args(["--sha256-url", &file_url(sums)]);
    }
    (run(cmd), dest)
}

/// What ugw-fetch said, checked against what minisign says: both accept, or both refuse
/// with `bad_signature` and nothing staged.
fn same_verdict(keys: &Keys, signed: &Path, sig: &Path, out: &Outcome, dest: &Path, case: &str) {
    let reference = keys.minisign_accepts(signed, sig);
    if reference {
        assert_eq!(
            out.code, 0,
            "{case}: minisign accepts, ugw-fetch refuses\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
    } else {
        assert_eq!(
            out.code, 1,
            "{case}: minisign refuses, ugw-fetch: {}",
            out.stdout
        );
        assert_eq!(out.last_step().error_kind(), "bad_signature", "{case}");
        let left: Vec<_> = std::fs::read_dir(dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != ".ugw-fetch.lock")
            .collect();
        assert!(left.is_empty(), "{case}: nothing is staged, found {left:?}");
    }
}

/// A release file of a few MiB, not all alike.
fn artifact(dir: &Path) -> PathBuf {
    let path = dir.join("app-1.0.tar.gz");
    let bytes: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i * 31 + i / 977) as u8)
        .collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `sig` with its trusted comment changed (the global signature no longer covers it).
fn with_edited_trusted_comment(sig: &Path) -> PathBuf {
    let text = std::fs::read_to_string(sig).unwrap();
    assert!(text.contains("trusted comment: release app 1.0"), "{text}");
    let edited = PathBuf::from(format!("{}.edited", sig.display()));
    std::fs::write(&edited, text.replace("release app 1.0", "release app 9.9")).unwrap();
    edited
}

#[test]
fn both_algorithms_verify_an_artifact_and_every_forgery_is_refused() {
    if !kit::require("minisign") {
        return;
    }
    let keys = Keys::new();
    let other_keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let file = artifact(dir.path());
    for legacy in [false, true] {
        let sig = keys.sign(&file, legacy);
        assert_eq!(algorithm(&sig), if legacy { "Ed" } else { "ED" });
        let case = if legacy { "legacy" } else { "prehashed" };

        let (out, dest) = fetch(&file, None, &keys.public(), &sig);
        same_verdict(&keys, &file, &sig, &out, dest.path(), case);
        out.succeeds();
        assert_eq!(
            std::fs::read(dest.path().join("app-1.0.tar.gz")).unwrap(),
            std::fs::read(&file).unwrap()
        );

        // One byte changed, in the middle of the file.
        let tampered = dir.path().join(format!("tampered-{case}/app-1.0.tar.gz"));
        std::fs::create_dir_all(tampered.parent().unwrap()).unwrap();
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[1_500_000] ^= 1;
        std::fs::write(&tampered, bytes).unwrap();
        let (out, dest) = fetch(&tampered, None, &keys.public(), &sig);
        same_verdict(&keys, &tampered, &sig, &out, dest.path(), "tampered");
        out.assert_code(1);

        // The right file, checked with another key.
        let (out, dest) = fetch(&file, None, &other_keys.public(), &sig);
        assert!(!other_keys.minisign_accepts(&file, &sig));
        out.fails_with(kit::Kind::BadSignature)
            .stdout_has("another key");
        drop(dest);

        // The trusted comment edited.
        let edited = with_edited_trusted_comment(&sig);
        let (out, dest) = fetch(&file, None, &keys.public(), &edited);
        same_verdict(&keys, &file, &edited, &out, dest.path(), "edited comment");
        out.assert_code(1);
    }
}

#[test]
fn both_algorithms_verify_a_checksum_file_before_its_digest_is_trusted() {
    if !kit::require("minisign") {
        return;
    }
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let file = artifact(dir.path());
    let sums = dir.path().join("SHA256SUMS");
    let digest = kit::sha256(&std::fs::read(&file).unwrap());
    std::fs::write(&sums, format!("{digest}  app-1.0.tar.gz\n")).unwrap();
    for legacy in [false, true] {
        let sig = keys.sign(&sums, legacy);
        let (out, dest) = fetch(&file, Some(&sums), &keys.public(), &sig);
        same_verdict(&keys, &sums, &sig, &out, dest.path(), "signed sums");
        out.succeeds();

        let forged = dir.path().join("SHA256SUMS.forged");
        std::fs::write(
            &forged,
            format!("{}  app-1.0.tar.gz\n", kit::sha256(b"evil")),
        )
        .unwrap();
        let (out, dest) = fetch(&file, Some(&forged), &keys.public(), &sig);
        same_verdict(&keys, &forged, &sig, &out, dest.path(), "forged sums");
        out.assert_code(1);

        let edited = with_edited_trusted_comment(&sig);
        let (out, dest) = fetch(&file, Some(&sums), &keys.public(), &edited);
        same_verdict(
            &keys,
            &sums,
            &edited,
            &out,
            dest.path(),
            "sums, edited comment",
        );
        out.assert_code(1);
    }
}

/// rust-minisign-verify's own legacy vector: this key signed the 4 bytes `test` (`Ed`).
const LEGACY_KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
const LEGACY_SIG: &str = "untrusted comment: signature from minisign secret key
RWQf6LRCGA9i59SLOFxz6NxvASXDJeRtuZykwQepbDEGt87ig1BNpWaVWuNrm73YiIiJbq71Wi+dP9eKL8OC351vwIasSSbXxwA=
trusted comment: timestamp:1555779966\tfile:test
QtKMXWyYcwdpZAlPF7tE2ENJkRd1ujvKjlj1m9RtHTBnZPa5WKU5uWRs5GoP5M/VqE81QFuMKI5k/SfNQUaOAA==
";

#[test]
fn the_published_legacy_vector_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("test");
    std::fs::write(&file, "test").unwrap();
    let sig = dir.path().join("test.minisig");
    std::fs::write(&sig, LEGACY_SIG).unwrap();
    let key = dir.path().join("key.pub");
    std::fs::write(
        &key,
        format!("untrusted comment: minisign public key\n{LEGACY_KEY}\n"),
    )
    .unwrap();
    let (out, dest) = fetch(&file, None, &key, &sig);
    out.succeeds();
    assert_eq!(std::fs::read(dest.path().join("test")).unwrap(), b"test");
    std::fs::write(&file, "Test").unwrap();
    let (out, _dest) = fetch(&file, None, &key, &sig);
    assert_eq!(out.assert_code(1).last_step().error_kind(), "bad_signature");
}

#[test]
fn an_empty_artifact_signed_in_legacy_mode_verifies() {
    if !kit::require("minisign") {
        return;
    }
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.bin");
    std::fs::write(&file, "").unwrap();
    let sig = keys.sign(&file, true);
    let (out, dest) = fetch(&file, None, &keys.public(), &sig);
    same_verdict(&keys, &file, &sig, &out, dest.path(), "empty legacy");
    out.succeeds();
}
