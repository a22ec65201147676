//! SHA256SUMS conformance: checksum files written at test time by the tools releases use
//! (`sha256sum`, `sha256sum --tag`, perl's `shasum`, `openssl dgst`), each checked by
//! `sha256sum -c` side by side as the reference, then read by `ugw-fetch --sha256-url`. What
//! `sha256sum -c` accepts, ugw-fetch accepts for the same file; what it refuses, ugw refuses.

use crate::kit;

use kit::{Outcome, run, s, tool};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// `path` as a `file://` URL, every byte but unreserved ones and `/` percent-encoded (a
/// backslash left bare would be read as `/`).
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in s(path).bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
    url
}

/// `ugw-fetch` of `dir/name` (a file:// URL), its digest looked up in the checksum file.
fn fetch_checked(
    dir: &Path,
    name: &str,
    sums: &Path,
    extra: &[&str],
) -> (Outcome, tempfile::TempDir) {
    let dest = tempfile::tempdir().unwrap();
    let mut cmd = tool("ugw-fetch");
    cmd.args(["--url", &file_url(&dir.join(name))])
        .args(["--sha256-url", &file_url(sums)])
        .args(["--dest", s(dest.path())])
        .args(extra);
    (run(cmd), dest)
}

/// The reference: whether `sha256sum -c SUMS` run in `dir` verifies every line.
fn sha256sum_accepts(dir: &Path, sums: &Path) -> bool {
    Command::new("sha256sum")
        .arg("-c")
        .arg("--strict")
        .arg(sums)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}

/// Run `program args…` in `dir` and return its stdout: a checksum file's text.
fn written_by(dir: &Path, program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    String::from_utf8(kit::succeeds(cmd).stdout).unwrap()
}

/// Names `sha256sum` writes with GNU's `\` escape (a backslash), a space, and a plain one.
const NAMES: [&str; 3] = ["app-1.0.tar.gz", "back\\slash.bin", "two words.bin"];

fn release_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, name) in NAMES.iter().enumerate() {
        std::fs::write(
            dir.path().join(name),
            format!("release file {i}\n").repeat(50),
        )
        .unwrap();
    }
    dir
}

/// Every form, with the reference's verdict first: each name fetched from each file.
fn every_name_fetches_with(dir: &Path, form: &str, text: &str, reference: bool) {
    let sums = dir.join(format!("SUMS.{}", form.replace(' ', "_")));
    std::fs::write(&sums, text).unwrap();
    if reference {
        assert!(
            sha256sum_accepts(dir, &sums),
            "sha256sum -c refuses the {form} file itself:\n{text}"
        );
    }
    for name in NAMES {
        let (out, dest) = fetch_checked(dir, name, &sums, &[]);
        assert_eq!(
            out.code, 0,
            "{form}: {name:?} from\n{text}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        assert_eq!(
            std::fs::read(dest.path().join(name)).unwrap(),
            std::fs::read(dir.join(name)).unwrap()
        );
    }
}

#[test]
fn checksum_files_written_by_sha256sum_and_shasum_are_read_as_sha256sum_reads_them() {
    if !kit::require("sha256sum") {
        return;
    }
    let dir = release_dir();
    let text = written_by(dir.path(), "sha256sum", &NAMES);
    assert!(
        text.contains("\n\\"),
        "sha256sum escapes the backslash name:\n{text}"
    );
    every_name_fetches_with(dir.path(), "sha256sum", &text, true);
    let binary = written_by(dir.path(), "sha256sum", &[&["-b"][..], &NAMES].concat());
    every_name_fetches_with(dir.path(), "sha256sum -b", &binary, true);
    let tagged = written_by(dir.path(), "sha256sum", &[&["--tag"][..], &NAMES].concat());
    every_name_fetches_with(dir.path(), "sha256sum --tag", &tagged, true);
    let crlf = text.replace('\n', "\r\n");
    every_name_fetches_with(dir.path(), "sha256sum CRLF", &crlf, true);
    if kit::require("shasum") {
        let perl = written_by(dir.path(), "shasum", &[&["-a", "256"][..], &NAMES].concat());
        every_name_fetches_with(dir.path(), "shasum", &perl, true);
        let perl_tag = written_by(
            dir.path(),
            "shasum",
            &[&["-a", "256", "--tag"][..], &NAMES].concat(),
        );
        every_name_fetches_with(dir.path(), "shasum --tag", &perl_tag, true);
    }
}

#[test]
fn openssl_dgst_lines_are_read() {
    if !kit::require("openssl") || !kit::require("sha256sum") {
        return;
    }
    let dir = release_dir();
    // openssl 3 writes `SHA2-256(NAME)= HASH`, which sha256sum does not read; openssl 1.1
    // wrote `SHA256(NAME)= HASH`, which it does: both forms are published.
    let names = ["app-1.0.tar.gz", "two words.bin"];
    let today = written_by(
        dir.path(),
        "openssl",
        &[&["dgst", "-sha256"][..], &names].concat(),
    );
    let classic = today.replace("SHA2-256(", "SHA256(");
    assert!(classic.starts_with("SHA256("), "{classic}");
    let sums = dir.path().join("SUMS.openssl");
    std::fs::write(&sums, &classic).unwrap();
    assert!(sha256sum_accepts(dir.path(), &sums), "{classic}");
    let sums_today = dir.path().join("SUMS.openssl3");
    std::fs::write(&sums_today, &today).unwrap();
    for name in names {
        for sums in [&sums, &sums_today] {
            let (out, dest) = fetch_checked(dir.path(), name, sums, &[]);
            out.succeeds();
            assert!(dest.path().join(name).is_file());
        }
    }
}

#[test]
fn the_exact_name_is_matched_before_a_base_name_in_a_tree_wide_file() {
    if !kit::require("sha256sum") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (path, body) in [("app", "top"), ("dist/app", "dist"), ("old/app", "old")] {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let text = written_by(dir.path(), "sha256sum", &["app", "dist/app", "./old/app"]);
    let sums = dir.path().join("SHA256SUMS");
    std::fs::write(&sums, &text).unwrap();
    assert!(sha256sum_accepts(dir.path(), &sums));
    let (out, dest) = fetch_checked(dir.path(), "app", &sums, &[]);
    out.succeeds();
    assert_eq!(std::fs::read(dest.path().join("app")).unwrap(), b"top");
    // Fetching dist/app: no line names `app` alone, and two folders' lines disagree.
    let nested = dir.path().join("only-nested");
    std::fs::write(&nested, text.lines().skip(1).collect::<Vec<_>>().join("\n")).unwrap();
    let (out, dest) = fetch_checked(&dir.path().join("dist"), "app", &nested, &[]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "not_found");
    assert!(
        step.error.unwrap().message.contains("ambiguous"),
        "{}",
        out.stdout
    );
    assert!(!dest.path().join("app").exists());
    // One nested line alone is unambiguous.
    let one = dir.path().join("one-nested");
    std::fs::write(&one, text.lines().nth(1).unwrap()).unwrap();
    let (out, dest) = fetch_checked(&dir.path().join("dist"), "app", &one, &[]);
    out.succeeds();
    assert_eq!(std::fs::read(dest.path().join("app")).unwrap(), b"dist");
}

#[test]
fn a_trailing_space_is_part_of_the_name() {
    if !kit::require("sha256sum") {
        return;
    }
    // The line is for `app ` (trailing space), with the bytes `app` has: sha256sum -c
    // checks a file named `app `, which is not here, and fails; so must ugw.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("app "), "content").unwrap();
    let text = written_by(elsewhere.path(), "sha256sum", &["app "]);
    assert!(text.ends_with("app \n"), "{text:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app"), "content").unwrap();
    let sums = dir.path().join("SHA256SUMS");
    std::fs::write(&sums, &text).unwrap();
    assert!(!sha256sum_accepts(dir.path(), &sums));
    let (out, dest) = fetch_checked(dir.path(), "app", &sums, &[]);
    assert_eq!(out.assert_code(1).last_step().error_kind(), "not_found");
    assert!(!dest.path().join("app").exists());
}

#[test]
fn the_name_given_is_looked_up_before_the_urls_name() {
    // A forge's asset URL ends in an id; the SUMS file names the release file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("12345"), "the release").unwrap();
    let sums = dir.path().join("SHA256SUMS");
    std::fs::write(
        &sums,
        format!("{}  app-v1.0.0.tar.gz\n", kit::sha256(b"the release")),
    )
    .unwrap();
    let (out, dest) = fetch_checked(dir.path(), "12345", &sums, &["--name", "app-v1.0.0.tar.gz"]);
    out.succeeds();
    assert_eq!(
        std::fs::read(dest.path().join("app-v1.0.0.tar.gz")).unwrap(),
        b"the release"
    );
    // Neither name listed: the message names both.
    let (out, _dest) = fetch_checked(dir.path(), "12345", &sums, &["--name", "app-v2"]);
    let step = out.assert_code(1).last_step();
    let message = step.error.unwrap().message;
    assert!(message.contains("'app-v2' or '12345'"), "{message}");
}

#[test]
fn a_sha256_file_url_is_parsed_as_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("with space");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("app"), "bytes").unwrap();
    let sums = folder.join("SHA256SUMS");
    std::fs::write(&sums, format!("{}  app\n", kit::sha256(b"bytes"))).unwrap();
    let encoded = file_url(&sums);
    assert!(encoded.contains("%20"));
    for sums_url in [
        encoded.clone(),
        encoded.replacen("file://", "file://localhost", 1),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let mut cmd = tool("ugw-fetch");
        cmd.args(["--url", &file_url(&folder.join("app"))])
            .args(["--sha256-url", &sums_url])
            .args(["--dest", s(dest.path())]);
        let out = run(cmd);
        assert_eq!(out.code, 0, "{sums_url}: {}", out.stdout);
        assert!(dest.path().join("app").is_file());
    }
}
