//! Conformance of ugw's tar extraction (`ugw-fetch --extract`, `ugw-backup restore`) with the
//! archives the world publishes. Every archive is made at test time — by GNU tar (PAX sparse
//! 0.0, 0.1 and 1.0, GNU and old GNU sparse, xz and bzip2), bsdtar (which detects holes by
//! default), `git archive` (a global PAX header) and Python's tarfile — never vendored. What
//! ugw extracts is compared with what GNU tar extracts from the same archive into another
//! folder: contents, symlinks, hard links, holes (`st_blocks`), and modes after the release
//! rule ugw(7) states. Hand-made variants of the same formats that are unsafe or damaged (a
//! wrong PAX length, a path thousands of folders deep, a hard link that moves a symlink up)
//! are refused with nothing left behind.

use crate::kit;

use kit::hostile_archives::{Tar, pax_record};
use kit::{Outcome, require, run, run_within, s, sha256, tool};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const SPARSE_SIZE: u64 = 5 * MIB;

/// The modes a release gets (ugw(7) "Extraction"): group and other write, setuid, setgid and
/// sticky cleared; the owner gets read (read, write and search on a folder); execute kept.
fn release_mode(mode: u32, dir: bool) -> u32 {
    if dir {
        (mode & 0o755) | 0o700
    } else {
        (mode & 0o755) | 0o400
    }
}

/// A tree with what releases hold: odd modes (0o664, 0o775, 0o777, 000, a sticky folder),
/// a 5 MiB file with holes, a symlink and a hard link.
fn source_tree(root: &Path) -> PathBuf {
    let app = root.join("src/app");
    std::fs::create_dir_all(app.join("tmp")).unwrap();
    std::fs::create_dir_all(app.join("lib/deep")).unwrap();
    let write = |name: &str, data: &[u8], mode: u32| {
        std::fs::write(app.join(name), data).unwrap();
        std::fs::set_permissions(app.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("readme.txt", b"hello\n", 0o664);
    write("run.sh", b"#!/bin/sh\necho hi\n", 0o775);
    write("open", b"anyone may write me\n", 0o777);
    write("locked", b"no one may read me\n", 0o000);
    write("lib/deep/data.bin", &[7u8; 3000], 0o640);
    let sparse = std::fs::File::create(app.join("sparse.img")).unwrap();
    sparse.set_len(SPARSE_SIZE).unwrap();
    sparse.write_all_at(b"head", 0).unwrap();
    sparse.write_all_at(b"middle", 2 * MIB).unwrap();
    sparse.write_all_at(b"tail", SPARSE_SIZE - 4).unwrap();
    std::os::unix::fs::symlink("run.sh", app.join("current")).unwrap();
    std::fs::hard_link(app.join("readme.txt"), app.join("again")).unwrap();
    std::fs::set_permissions(app.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(app.as_path(), std::fs::Permissions::from_mode(0o775)).unwrap();
    root.join("src")
}

fn command(program: &str, args: &[&str], dir: &Path) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    kit::succeeds(cmd);
}

/// `ugw-fetch --extract` of the archive file into `dest/out`, with `extra` flags.
fn fetch_extract(archive: &Path, dest: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = kit::fetch_extract_cmd(archive, dest);
    cmd.args(extra);
    run_within(cmd, Duration::from_secs(60))
}

/// What GNU tar extracts from `archive` into a new folder `into`.
fn gnu_extract(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    command("tar", &["-xf", s(archive), "-C", s(into)], into);
}

/// What Python's tarfile extracts from `archive` into a new folder `into` (modes as the
/// archive says: `filter='tar'` without its mode rule, as GNU tar as root).
fn python_extract(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let script = "import sys, tarfile\n\
        tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='fully_trusted')";
    command("python3", &["-c", script, s(archive), s(into)], into);
}

/// Every path under `root` (relative, sorted), ugw-fetch's marker left out.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            if path == Path::new(ugw_shared::tree_manifest::FETCH_MARKER) {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

/// Panics unless `ours` holds what `gnu` holds: the same names and types, contents, symlink
/// targets and hard links, no more blocks than GNU tar allocated (holes stay holes), and
/// modes as `mode_rule` maps GNU tar's (which, as root, keeps the archive's).
#[track_caller]
fn assert_same_tree(case: &str, ours: &Path, gnu: &Path, mode_rule: fn(u32, bool) -> u32) {
    let names = walk(ours);
    assert_eq!(names, walk(gnu), "{case}: the names differ");
    for rel in names {
        let (a, b) = (ours.join(&rel), gnu.join(&rel));
        let (ma, mb) = (
            std::fs::symlink_metadata(&a).unwrap(),
            std::fs::symlink_metadata(&b).unwrap(),
        );
        let what = format!("{case}: {}", rel.display());
        assert_eq!(ma.file_type(), mb.file_type(), "{what}: type");
        if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&a).unwrap(),
                std::fs::read_link(&b).unwrap(),
                "{what}"
            );
            continue;
        }
        assert_eq!(
            ma.mode() & 0o7777,
            mode_rule(mb.mode() & 0o7777, ma.is_dir()),
            "{what}: mode {:o} from GNU tar's {:o}",
            ma.mode() & 0o7777,
            mb.mode() & 0o7777
        );
        if ma.is_file() {
            assert_eq!(ma.len(), mb.len(), "{what}: size");
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{what}: content"
            );
            assert!(
                ma.blocks() <= mb.blocks() + 8,
                "{what}: {} blocks where GNU tar has {} (holes written as zeros)",
                ma.blocks(),
                mb.blocks()
            );
            assert_eq!(ma.nlink(), mb.nlink(), "{what}: hard links");
        }
    }
}

/// The tree under `out` after a fetch that must succeed.
#[track_caller]
fn extracted(case: &str, out: &Outcome, dest: &Path) -> PathBuf {
    assert_eq!(out.code, 0, "{case}: {}", out.stderr);
    dest.join("out")
}

/// `ugw-fetch --extract` of `archive` and GNU tar's extraction of it hold the same tree.
#[track_caller]
fn assert_extracts_as_gnu_tar(case: &str, archive: &Path, work: &Path) {
    let dest = work.join(format!("{case}-dest"));
    std::fs::create_dir_all(&dest).unwrap();
    let ours = extracted(case, &fetch_extract(archive, &dest, &[]), &dest);
    let gnu = work.join(format!("{case}-gnu"));
    gnu_extract(archive, &gnu);
    assert_same_tree(case, &ours, &gnu, release_mode);
}

#[track_caller]
fn assert_sparse_kept(case: &str, file: &Path) {
    let meta = std::fs::metadata(file).unwrap();
    assert_eq!(meta.len(), SPARSE_SIZE, "{case}");
    assert!(
        meta.blocks() * 512 < MIB,
        "{case}: {} bytes allocated for a 5 MiB file with 14 bytes of data",
        meta.blocks() * 512
    );
    let read = |at: u64, len: usize| {
        let mut buf = vec![0u8; len];
        std::fs::File::open(file)
            .unwrap()
            .read_exact_at(&mut buf, at)
            .unwrap();
        buf
    };
    assert_eq!(read(0, 4), b"head", "{case}");
    assert_eq!(read(2 * MIB, 6), b"middle", "{case}");
    assert_eq!(read(SPARSE_SIZE - 4, 4), b"tail", "{case}");
    assert_eq!(
        read(MIB, 4096),
        vec![0u8; 4096],
        "{case}: a hole reads as zeros"
    );
}

#[test]
fn gnu_tar_sparse_files_in_every_format_extract_as_gnu_tar_extracts_them() {
    if !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    let cases: [(&str, &[&str]); 6] = [
        ("posix-sparse", &["--format=posix", "--sparse"]),
        (
            "posix-sparse-1.0",
            &["--format=posix", "--sparse", "--sparse-version=1.0"],
        ),
        (
            "posix-sparse-0.1",
            &["--format=posix", "--sparse", "--sparse-version=0.1"],
        ),
        (
            "posix-sparse-0.0",
            &["--format=posix", "--sparse", "--sparse-version=0.0"],
        ),
        ("gnu-sparse", &["--format=gnu", "--sparse"]),
        ("oldgnu-sparse", &["--format=oldgnu", "--sparse"]),
    ];
    for (case, flags) in cases {
        let archive = dir.path().join(format!("{case}.tar"));
        let mut args = vec!["-cf", s(&archive)];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-C", s(&src), "."]);
        command("tar", &args, dir.path());
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
        let ours = dir.path().join(format!("{case}-dest/out"));
        assert_sparse_kept(case, &ours.join("app/sparse.img"));
    }
}

#[test]
fn gnu_tar_formats_labels_incremental_dumps_and_odd_numbers_extract_as_gnu_tar_extracts_them() {
    if !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    // A path a ustar header holds only split into its prefix and name fields, and one longer
    // than both (a GNU long name or a PAX path).
    let long = "n".repeat(90);
    let split = src.join(format!("app/{long}/deeper"));
    std::fs::create_dir_all(&split).unwrap();
    std::fs::write(split.join(format!("{long}.txt")), "split\n").unwrap();
    let cases: [(&str, &[&str]); 9] = [
        ("v7", &["--format=v7", "--exclude=./app/nnn*"]),
        ("ustar", &["--format=ustar"]),
        ("gnu", &["--format=gnu"]),
        ("oldgnu", &["--format=oldgnu"]),
        ("posix", &["--format=posix"]),
        ("gnu-label", &["--format=gnu", "--label=VOLUME 1"]),
        (
            "gnu-incremental",
            &["--format=gnu", "--listed-incremental=snapshot"],
        ),
        (
            "gnu-big-ids",
            &["--format=gnu", "--owner=big:3000000", "--group=big:3000000"],
        ),
        ("posix-before-1970", &["--format=posix", "--mtime=@-100.5"]),
    ];
    let deep = src.join(format!("app/{long}/deeper/{}", "m".repeat(120)));
    for (case, flags) in cases {
        if case == "gnu" {
            std::fs::write(&deep, "longer than a ustar name\n").unwrap();
        }
        let archive = dir.path().join(format!("{case}.tar"));
        let mut args = vec!["-cf", s(&archive)];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-C", s(&src), "."]);
        command("tar", &args, dir.path());
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
    }
}

#[test]
fn a_sparse_file_with_more_chunks_than_a_header_holds_extracts_as_gnu_tar_extracts_it() {
    if !require("tar") {
        return;
    }
    // 40 runs of data: the old GNU format carries the map past its header's four entries in
    // extension blocks, PAX 1.0 in a map longer than one block.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let file = std::fs::File::create(src.join("many.img")).unwrap();
    file.set_len(8 * MIB).unwrap();
    for i in 0..40u8 {
        let at = u64::from(i) * 200_000 + u64::from(i) * 4096;
        file.write_all_at(&vec![i + 1; 100 + usize::from(i) * 37], at)
            .unwrap();
    }
    drop(file);
    for (case, program, flags) in [
        ("many-gnu", "tar", &["--format=gnu", "--sparse"][..]),
        ("many-posix", "tar", &["--format=posix", "--sparse"][..]),
        ("many-bsdtar", "bsdtar", &[][..]),
    ] {
        if !require(program) {
            continue;
        }
        let archive = dir.path().join(format!("{case}.tar"));
        let mut args = vec!["-cf", s(&archive)];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-C", s(&src), "many.img"]);
        command(program, &args, dir.path());
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
        let ours = dir.path().join(format!("{case}-dest/out/many.img"));
        assert!(std::fs::read(&ours).unwrap() == std::fs::read(src.join("many.img")).unwrap());
        assert!(
            std::fs::metadata(&ours).unwrap().blocks() * 512 < MIB,
            "{case}"
        );
    }
}

#[test]
fn bsdtar_archives_of_files_with_holes_extract_as_gnu_tar_extracts_them() {
    if !require("bsdtar") || !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    for (case, flags) in [
        ("bsdtar-default", &[][..]),
        ("bsdtar-pax", &["--format=pax"][..]),
        ("bsdtar-gnutar", &["--format=gnutar"][..]),
    ] {
        let archive = dir.path().join(format!("{case}.tar"));
        let mut args = vec!["-cf", s(&archive)];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-C", s(&src), "."]);
        command("bsdtar", &args, dir.path());
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
        let ours = dir.path().join(format!("{case}-dest/out"));
        if case != "bsdtar-gnutar" {
            // bsdtar writes the GNU format without holes; its PAX output keeps them.
            assert_sparse_kept(case, &ours.join("app/sparse.img"));
        }
    }
}

#[test]
fn a_sparse_file_of_256_mib_with_a_few_kib_of_data_extracts_into_little_disk() {
    // ugw_shared::unpack's own tests extract a 20 GiB one; through ugw-fetch, the tree
    // manifest it records reads every logical byte, so this one is smaller.
    const HUGE: u64 = 256 * MIB;
    if !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let file = std::fs::File::create(src.join("disk.img")).unwrap();
    file.set_len(HUGE).unwrap();
    file.write_all_at(&[1u8; 3000], 0).unwrap();
    file.write_all_at(&[2u8; 3000], HUGE / 2).unwrap();
    file.write_all_at(b"end", HUGE - 3).unwrap();
    drop(file);
    // The PAX format first: on a reader without sparse support it fails at once on the
    // name, before an old GNU one could write 20 GiB of zeros.
    for (case, program, flags) in [
        ("posix", "tar", &["--format=posix", "--sparse"][..]),
        ("bsdtar", "bsdtar", &[][..]),
        ("gnu", "tar", &["--format=gnu", "--sparse"][..]),
    ] {
        if !require(program) {
            continue;
        }
        let archive = dir.path().join(format!("{case}.tar.gz"));
        let mut args = vec!["-czf", s(&archive)];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-C", s(&src), "disk.img"]);
        command(program, &args, dir.path());
        let dest = dir.path().join(format!("{case}-dest"));
        std::fs::create_dir(&dest).unwrap();
        let started = Instant::now();
        let mut cmd = tool("ugw-fetch");
        let bytes = std::fs::read(&archive).unwrap();
        // The free-space check counts real bytes: 1 MiB free is room enough.
        cmd.env(ugw_shared::space::FAKE_FREE_ENV, MIB.to_string())
            .args([
                "--url",
                &format!("file://{}", s(&archive)),
                "--sha256",
                &sha256(&bytes),
                "--dest",
                s(&dest),
                "--extract",
                "--name",
                "out",
                "--timeout",
                "20s",
            ]);
        let out = run_within(cmd, Duration::from_secs(30));
        let took = started.elapsed();
        assert_eq!(out.code, 0, "{case}: {}", out.stderr);
        assert!(took < Duration::from_secs(10), "{case}: took {took:?}");
        let meta = std::fs::metadata(dest.join("out/disk.img")).unwrap();
        assert_eq!(meta.len(), HUGE, "{case}");
        assert!(
            meta.blocks() * 512 < 4 * MIB,
            "{case}: {} bytes on disk",
            meta.blocks() * 512
        );
        let extracted = std::fs::File::open(dest.join("out/disk.img")).unwrap();
        let mut buf = [0u8; 3];
        extracted.read_exact_at(&mut buf, HUGE - 3).unwrap();
        assert_eq!(&buf, b"end", "{case}");
        extracted.read_exact_at(&mut buf, HUGE / 2 + 10).unwrap();
        assert_eq!(buf, [2u8; 3], "{case}");
    }
}

/// A git repository with a commit of a small tree (a script, a symlink, a sub-folder).
fn git_repo(root: &Path) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("README"), "a project\n").unwrap();
    std::fs::write(repo.join("src/main.sh"), "#!/bin/sh\necho main\n").unwrap();
    std::fs::set_permissions(
        repo.join("src/main.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("src/main.sh", repo.join("run")).unwrap();
    let git = |args: &[&str]| {
        let mut all = vec!["-c", "user.name=t", "-c", "user.email=t@example.invalid"];
        all.extend_from_slice(args);
        command("git", &all, &repo);
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    repo
}

#[test]
fn git_archive_output_with_its_global_pax_header_extracts_end_to_end() {
    if !require("git") || !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = git_repo(dir.path());
    for (case, args) in [
        ("git-tar-gz", &["--format=tar.gz"][..]),
        (
            "git-tar-prefix",
            &["--format=tar", "--prefix=project-1.0/"][..],
        ),
    ] {
        let archive = dir.path().join(format!("{case}.archive"));
        let mut all = vec!["archive"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", s(&archive), "HEAD"]);
        command("git", &all, &repo);
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
    }
    let ours = dir.path().join("git-tar-gz-dest/out");
    assert_eq!(
        std::fs::read_link(ours.join("run")).unwrap(),
        Path::new("src/main.sh")
    );
    assert!(!ours.join("pax_global_header").exists());
}

/// Archives Python's tarfile writes: PAX with a global header and long and non-ASCII names,
/// GNU with long names, and `CPython`'s `test_chains` shape (a hard link to a symlink).
const PYTHON_ARCHIVES: &str = r##"
import io, sys, tarfile
out = sys.argv[1]
def add(tar, name, data=b"", kind=tarfile.REGTYPE, link="", mode=0o644):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    info.mtime = 1600000000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
for fmt, name in [(tarfile.PAX_FORMAT, "pax"), (tarfile.GNU_FORMAT, "gnu")]:
    headers = {"comment": "made by a test"} if fmt == tarfile.PAX_FORMAT else {}
    with tarfile.open(f"{out}/python-{name}.tar", "w", format=fmt, pax_headers=headers) as tar:
        add(tar, "pkg", kind=tarfile.DIRTYPE, mode=0o755)
        add(tar, "pkg/" + "long-name-" * 20 + ".txt", b"long\n")
        add(tar, "pkg/caf\u00e9.txt", b"accent\n", mode=0o664)
        add(tar, "pkg/tool", b"#!/bin/sh\n", mode=0o775)
        add(tar, "pkg/link", kind=tarfile.SYMTYPE, link="tool")
        add(tar, "pkg/hard-to-link", kind=tarfile.LNKTYPE, link="pkg/link")
        add(tar, "pkg/hard-to-file", kind=tarfile.LNKTYPE, link="pkg/tool")
"##;

#[test]
fn python_tarfile_archives_extract_as_gnu_tar_extracts_them() {
    if !require("python3") || !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    command(
        "python3",
        &["-c", PYTHON_ARCHIVES, s(dir.path())],
        dir.path(),
    );
    for case in ["python-pax", "python-gnu"] {
        let archive = dir.path().join(format!("{case}.tar"));
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
        let ours = dir.path().join(format!("{case}-dest/out/pkg"));
        let link = std::fs::symlink_metadata(ours.join("hard-to-link")).unwrap();
        assert!(
            link.file_type().is_symlink(),
            "{case}: a hard link to a symlink"
        );
        assert_eq!(
            link.ino(),
            std::fs::symlink_metadata(ours.join("link")).unwrap().ino(),
            "{case}"
        );
    }
}

#[test]
fn an_old_gnu_sparse_file_with_unaligned_chunks_extracts_as_python_and_go_read_it() {
    if !require("python3") {
        return;
    }
    // Go's sparse-formats.tar stores chunks of any length one after another, as Go's and
    // Python's readers read them (GNU tar writes only block-sized chunks but the last).
    let dir = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .old_gnu_sparse(
            b"sparse",
            &[(0, b"ab"), (1000, b"xyz"), (70_000, b"the end")],
            80_000,
        )
        .file(b"after", b"the entry after it is read at the right place\n");
    let archive = dir.path().join("old-gnu-unaligned.tar");
    std::fs::write(&archive, tar.finish()).unwrap();
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let ours = extracted(
        "old-gnu-unaligned",
        &fetch_extract(&archive, &dest, &[]),
        &dest,
    );
    let python = dir.path().join("python");
    python_extract(&archive, &python);
    assert_same_tree("old-gnu-unaligned", &ours, &python, release_mode);
    let data = std::fs::read(ours.join("sparse")).unwrap();
    assert_eq!(data.len(), 80_000);
    assert_eq!(&data[..2], b"ab");
    assert_eq!(&data[1000..1003], b"xyz");
    assert_eq!(&data[70_000..70_007], b"the end");
    assert!(data[2..1000].iter().all(|b| *b == 0));
}

#[test]
fn xz_and_bzip2_archives_extract_as_gnu_tar_extracts_them() {
    if !require("tar") || !require("xz") || !require("bzip2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    for (case, flag) in [("tar-xz", "-cJf"), ("tar-bz2", "-cjf")] {
        let archive = dir.path().join(format!("{case}.archive"));
        command("tar", &[flag, s(&archive), "-C", s(&src), "."], dir.path());
        assert_extracts_as_gnu_tar(case, &archive, dir.path());
    }
}

#[test]
fn release_modes_follow_the_data_rule() {
    if !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path());
    let archive = dir.path().join("modes.tar");
    command("tar", &["-cf", s(&archive), "-C", s(&src), "."], dir.path());
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let ours = extracted("modes", &fetch_extract(&archive, &dest, &[]), &dest);
    let mode = |p: &str| std::fs::symlink_metadata(ours.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("app/readme.txt"), 0o644, "group write cleared");
    assert_eq!(mode("app/run.sh"), 0o755, "execute kept");
    assert_eq!(mode("app/open"), 0o755, "world write cleared");
    assert_eq!(mode("app/locked"), 0o400, "the owner may read");
    assert_eq!(mode("app/tmp"), 0o755, "sticky and world write cleared");
    assert_eq!(mode("app"), 0o755);
}

/// `ugw-backup create` of `tree` (one `--path`), then verify, then `restore --to`; the
/// restored copy of `tree`, and the archive.
fn backup_round_trip(tree: &Path, work: &Path) -> (PathBuf, String) {
    let backup = |args: &[&str]| {
        let mut cmd = tool("ugw-backup");
        cmd.args(args);
        run(cmd)
    };
    let out = work.join("backups");
    let created = backup(&["create", "--path", s(tree), "--out", s(&out), "--name", "b"]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let archive = created.last_step().result["archive"]
        .as_str()
        .unwrap()
        .to_string();
    let verified = backup(&["verify", &archive]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let to = work.join("restored");
    let restored = backup(&["restore", &archive, "--to", s(&to)]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    (to.join(tree.strip_prefix("/").unwrap()), archive)
}

#[test]
fn a_backup_restore_puts_back_modes_symlinks_and_holes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = source_tree(dir.path()).join("app");
    std::os::unix::fs::symlink("/abs/path/elsewhere", src.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../../x", src.join("lib/up")).unwrap();
    std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    // The copy GNU tar would make (as root, it keeps modes), to compare the in-place restore.
    let archive_of_src = dir.path().join("src.tar");
    command(
        "tar",
        &["-cf", s(&archive_of_src), "-C", s(&src), "."],
        dir.path(),
    );
    let (restored, archive) = backup_round_trip(&src, dir.path());
    assert_same_tree("backup", &restored, &src, |mode, _| mode);
    assert_eq!(
        std::fs::read_link(restored.join("absolute")).unwrap(),
        Path::new("/abs/path/elsewhere")
    );
    assert_eq!(
        std::fs::read_link(restored.join("lib/up")).unwrap(),
        Path::new("../../x")
    );
    assert_sparse_kept("backup", &restored.join("sparse.img"));

    // In place too, over a tree that lost its links and its modes since.
    std::fs::remove_file(src.join("absolute")).unwrap();
    std::fs::remove_file(src.join("lib/up")).unwrap();
    std::fs::set_permissions(src.join("open"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd = tool("ugw-backup");
    cmd.args(["restore", &archive, "--in-place"]);
    let in_place = run(cmd);
    assert_eq!(in_place.code, 0, "{}", in_place.stderr);
    let expected = dir.path().join("expected");
    gnu_extract(&archive_of_src, &expected);
    assert_same_tree("backup in place", &src, &expected, |mode, _| mode);
    assert_eq!(
        std::fs::read_link(src.join("absolute")).unwrap(),
        Path::new("/abs/path/elsewhere")
    );
    assert_sparse_kept("backup in place", &src.join("sparse.img"));
}

#[test]
fn a_pax_record_whose_length_is_wrong_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = pax_record(b"path", b"renamed");
    assert_eq!(good, b"16 path=renamed\n");
    for (case, records) in [
        ("one-short", &b"15 path=renamed\n"[..]),
        ("one-long", &b"17 path=renamed\nx"[..]),
        ("not-a-number", &b"1x path=renamed\n"[..]),
        ("past-the-end", &b"99 path=renamed\n"[..]),
        ("no-key", &b"10 =value\n"[..]),
    ] {
        let tar = Tar::new().pax_raw(b'x', records).file(b"file", b"data");
        let archive = dir.path().join(format!("{case}.tar"));
        std::fs::write(&archive, tar.finish()).unwrap();
        let dest = dir.path().join(format!("{case}-dest"));
        std::fs::create_dir(&dest).unwrap();
        let out = fetch_extract(&archive, &dest, &[]).case(case);
        out.fails_with(kit::Kind::Corrupt).stderr_has("PAX");
        assert_eq!(
            std::fs::read_dir(&dest)
                .unwrap()
                .filter(|e| { e.as_ref().unwrap().file_name() != ".ugw-fetch.lock" })
                .count(),
            0,
            "{case}: something was left"
        );
    }
    // The right length is read, and applied.
    let tar = Tar::new().pax_raw(b'x', &good).file(b"file", b"data");
    let archive = dir.path().join("right.tar");
    std::fs::write(&archive, tar.finish()).unwrap();
    let dest = dir.path().join("right-dest");
    std::fs::create_dir(&dest).unwrap();
    let ours = extracted("right", &fetch_extract(&archive, &dest, &[]), &dest);
    assert_eq!(std::fs::read(ours.join("renamed")).unwrap(), b"data");
}

#[test]
fn a_global_pax_header_applies_to_the_entries_after_it() {
    if !require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .file(b"before", b"1")
        .pax_raw(b'g', &pax_record(b"mtime", b"1234567890"))
        .file(b"after", b"2");
    let archive = dir.path().join("global.tar");
    std::fs::write(&archive, tar.finish()).unwrap();
    assert_extracts_as_gnu_tar("global", &archive, dir.path());
    let ours = dir.path().join("global-dest/out");
    let mtime = |p: &str| std::fs::metadata(ours.join(p)).unwrap().mtime();
    assert_eq!(mtime("before"), 1_600_000_000);
    assert_eq!(mtime("after"), 1_234_567_890);
}

#[test]
fn a_path_thousands_of_folders_deep_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let deep = |levels: usize, name: &str| {
        let mut path = "a/".repeat(levels).into_bytes();
        path.extend_from_slice(name.as_bytes());
        path
    };
    for (case, path, why) in [
        ("3000-levels", deep(3000, "f"), "longer than 4095 bytes"),
        (
            "300-levels",
            deep(300, "f"),
            "nested deeper than 256 folders",
        ),
    ] {
        let tar = Tar::new().long_name(&path, b"x");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar.finish()).unwrap();
        let archive = dir.path().join(format!("{case}.tar.gz"));
        std::fs::write(&archive, gz.finish().unwrap()).unwrap();
        let dest = dir.path().join(format!("{case}-dest"));
        std::fs::create_dir(&dest).unwrap();
        let started = Instant::now();
        let out = fetch_extract(&archive, &dest, &["--timeout", "2s"]).case(case);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{case}: {:?}",
            started.elapsed()
        );
        out.fails_with(kit::Kind::UnsafeInput).stderr_has(why);
    }
    // As deep as the bound is still extracted.
    let tar = Tar::new().long_name(&deep(255, "f"), b"deep");
    let archive = dir.path().join("255-levels.tar");
    std::fs::write(&archive, tar.finish()).unwrap();
    let dest = dir.path().join("255-dest");
    std::fs::create_dir(&dest).unwrap();
    let ours = extracted("255", &fetch_extract(&archive, &dest, &[]), &dest);
    let file = ours.join(String::from_utf8(deep(255, "f")).unwrap());
    assert_eq!(std::fs::read(file).unwrap(), b"deep");
}

#[test]
fn a_hard_link_that_moves_a_symlink_up_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // a/b/up -> ../x stays inside where it stands; as a second name at the top it would
    // point outside the release.
    let tar = Tar::new()
        .symlink(b"a/b/up", b"../x")
        .hardlink(b"top", b"a/b/up");
    let archive = dir.path().join("moved-up.tar");
    std::fs::write(&archive, tar.finish()).unwrap();
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let out = fetch_extract(&archive, &dest, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.last_step().error_kind(), "unsafe_input");
    out.stderr_has("hard link to a symlink");
    assert!(!dest.join("out").exists());
}

#[test]
fn allow_absolute_symlinks_lets_a_venv_link_exist_and_nothing_else_out() {
    let dir = tempfile::tempdir().unwrap();
    let venv = Tar::new()
        .dir(b"venv/bin/")
        .symlink(b"venv/bin/python3", b"/usr/bin/python3")
        .file(b"venv/bin/activate", b"# activate\n");
    let archive = dir.path().join("venv.tar");
    std::fs::write(&archive, venv.finish()).unwrap();
    let refused = dir.path().join("refused");
    std::fs::create_dir(&refused).unwrap();
    let out = fetch_extract(&archive, &refused, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.stderr_has("--allow-absolute-symlinks");
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    let ours = extracted(
        "venv",
        &fetch_extract(&archive, &allowed, &["--allow-absolute-symlinks"]),
        &allowed,
    );
    assert_eq!(
        std::fs::read_link(ours.join("venv/bin/python3")).unwrap(),
        Path::new("/usr/bin/python3")
    );
    // The flag lets the link exist; writing through one, or a relative link out, is still
    // refused.
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    for (case, tar) in [
        (
            "write-through",
            Tar::new()
                .symlink(b"evil", outside.to_str().unwrap().as_bytes())
                .file(b"evil/planted", b"x"),
        ),
        ("relative-out", Tar::new().symlink(b"up", b"../../x")),
    ] {
        let archive = dir.path().join(format!("{case}.tar"));
        std::fs::write(&archive, tar.finish()).unwrap();
        let dest = dir.path().join(format!("{case}-dest"));
        std::fs::create_dir(&dest).unwrap();
        let out = fetch_extract(&archive, &dest, &["--allow-absolute-symlinks"]);
        assert_eq!(out.code, 1, "{case}: {}", out.stderr);
        assert_eq!(out.last_step().error_kind(), "unsafe_input", "{case}");
        assert!(!dest.join("out").exists(), "{case}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}
