//! Durability, seen in the system calls: each file ugw gives its final name (a record, a
//! fetched artifact, an extracted release folder, a backup archive and its sidecars) must be
//! fsync'd under its temp name, renamed onto the final name, and then its folder fsync'd, in
//! that order. A missing fsync changes nothing a test could read back from the disk (only a
//! power cut shows it), so the real binaries run under `strace` and the order is read from
//! its log.

use crate::kit;

use kit::file_server::{FileServer, Served};
use kit::{Outcome, run, s, sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The calls that make or name a file durable, and those that say which file an fd is
/// (`openat`, `close`) for when strace cannot decode an fd into a path.
const TRACED: &str = "trace=fsync,fdatasync,syncfs,rename,renameat,renameat2,openat,close";

// ---- the strace log ----

/// One system call, joined from its `<unfinished ...>` and `<... resumed>` halves when another
/// thread or process interleaved.
#[derive(Debug, Clone)]
struct Call {
    pid: u32,
    name: String,
    args: String,
    ret: String,
    /// The log line where the call began and where it returned: "before" means returned
    /// before the other began.
    began: usize,
    returned: usize,
}

impl Call {
    fn ok(&self) -> bool {
        self.ret
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .is_some_and(|n| !n.is_empty())
    }

    /// fsync and fdatasync make one file durable; syncfs every file of its file system.
    fn is_sync(&self) -> bool {
        matches!(self.name.as_str(), "fsync" | "fdatasync" | "syncfs")
    }

    fn is_rename(&self) -> bool {
        matches!(self.name.as_str(), "rename" | "renameat" | "renameat2")
    }
}

/// What the log says happened, in order, with every fd resolved to the path it was open on.
#[derive(Debug)]
struct Trace {
    log: String,
    calls: Vec<Call>,
    /// For each fsync/fdatasync/syncfs (by index into `calls`): the path of its fd.
    synced: HashMap<usize, PathBuf>,
    /// For each rename (by index into `calls`): from and to, absolute.
    renamed: HashMap<usize, (PathBuf, PathBuf)>,
}

/// Split off a leading `PID ` (strace -f writes one on every line once there are several).
fn split_pid(line: &str) -> (u32, &str) {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && line[digits..].starts_with(' ') {
        (
            line[..digits].parse().unwrap_or(0),
            line[digits..].trim_start(),
        )
    } else {
        (0, line)
    }
}

/// `name(args) = ret` into its three parts. strace pads short calls to a column before the
/// `=`, and the args may hold " = " inside a string: the last " = " after a `)` ends them.
fn split_call(text: &str) -> Option<(String, String, String)> {
    let open = text.find('(')?;
    let name = &text[..open];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let equals = text.rfind(" = ")?;
    let args = text[..equals].trim_end().strip_suffix(')')?;
    Some((
        name.to_string(),
        args.get(open + 1..)?.to_string(),
        text[equals + 3..].trim().to_string(),
    ))
}

fn parse_log(log: &str) -> Vec<Call> {
    const UNFINISHED: &str = " <unfinished ...>";
    let mut pending: HashMap<u32, (usize, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (index, line) in log.lines().enumerate() {
        let (pid, rest) = split_pid(line);
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue; // exits and signals
        }
        let (began, text) = if let Some(resumed) = rest.strip_prefix("<... ") {
            // `<... fsync resumed>) = 0`: the rest of the call this pid left unfinished.
            let Some(at) = resumed.find(" resumed>") else {
                continue;
            };
            let Some((began, head)) = pending.remove(&pid) else {
                continue;
            };
            (
                began,
                format!("{head}{}", &resumed[at + " resumed>".len()..]),
            )
        } else {
            (index, rest.to_string())
        };
        if let Some(head) = text.strip_suffix(UNFINISHED) {
            pending.insert(pid, (began, head.to_string()));
            continue;
        }
        if let Some((name, args, ret)) = split_call(&text) {
            calls.push(Call {
                pid,
                name,
                args,
                ret,
                began,
                returned: index,
            });
        }
    }
    calls
}

/// The C strings in a call's arguments, unescaped, in order.
fn quoted_strings(args: &str) -> Vec<Vec<u8>> {
    let bytes = args.as_bytes();
    let mut strings = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        i += 1;
        let mut text = Vec::new();
        while i < bytes.len() && bytes[i] != b'"' {
            if bytes[i] == b'\\' && i + 1 < bytes.len() {
                i += 1;
                match bytes[i] {
                    b'n' => text.push(b'\n'),
                    b't' => text.push(b'\t'),
                    b'r' => text.push(b'\r'),
                    b'x' if i + 2 < bytes.len() => {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                        text.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                        i += 2;
                    }
                    b'0'..=b'7' => {
                        let digits = bytes[i..]
                            .iter()
                            .take(3)
                            .take_while(|b| (b'0'..=b'7').contains(b))
                            .count();
                        let octal = std::str::from_utf8(&bytes[i..i + digits]).unwrap_or("0");
                        text.push(u8::from_str_radix(octal, 8).unwrap_or(b'?'));
                        i += digits - 1;
                    }
                    other => text.push(other),
                }
            } else {
                text.push(bytes[i]);
            }
            i += 1;
        }
        strings.push(text);
        i += 1;
    }
    strings
}

fn os_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// `3</tmp/x>` (an fd as `strace -y` decodes it) into 3 and `/tmp/x`; `3` alone into 3.
fn decoded_fd(text: &str) -> Option<(i64, Option<PathBuf>)> {
    let text = text.trim();
    let digits = text
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'-')
        .count();
    let fd = text[..digits].parse().ok()?;
    let path = text[digits..]
        .strip_prefix('<')
        .and_then(|p| p.rfind('>').map(|end| PathBuf::from(&p[..end])));
    Some((fd, path))
}

/// A dirfd argument (`AT_FDCWD`, `AT_FDCWD</cwd>`, `5</dir>`) as the folder it stands for.
fn dirfd_path(
    text: &str,
    fds: &HashMap<(u32, i64), PathBuf>,
    pid: u32,
    cwd: &Path,
) -> Option<PathBuf> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("AT_FDCWD") {
        return Some(
            rest.strip_prefix('<')
                .and_then(|p| p.strip_suffix('>'))
                .map_or_else(|| cwd.to_path_buf(), PathBuf::from),
        );
    }
    let (fd, path) = decoded_fd(text)?;
    path.or_else(|| fds.get(&(pid, fd)).cloned())
}

impl Trace {
    /// Read the log strace wrote for a run whose working folder was `cwd`.
    fn read(log_path: &Path, cwd: &Path) -> Trace {
        let log = std::fs::read_to_string(log_path).expect("strace wrote its log");
        let calls = parse_log(&log);
        // Per pid, what each fd was last opened on (the fallback when -y decoded nothing).
        let mut fds: HashMap<(u32, i64), PathBuf> = HashMap::new();
        let mut synced = HashMap::new();
        let mut renamed = HashMap::new();
        for (index, call) in calls.iter().enumerate() {
            let first_arg = call.args.split(", ").next().unwrap_or("");
            match call.name.as_str() {
                "openat" if call.ok() => {
                    let Some((fd, decoded)) = decoded_fd(&call.ret) else {
                        continue;
                    };
                    let named = quoted_strings(&call.args).into_iter().next().map(os_path);
                    let path = decoded.or_else(|| {
                        let named = named?;
                        if named.is_absolute() {
                            Some(named)
                        } else {
                            dirfd_path(first_arg, &fds, call.pid, cwd).map(|d| d.join(named))
                        }
                    });
                    if let Some(path) = path {
                        fds.insert((call.pid, fd), path);
                    }
                }
                "close" => {
                    if let Some((fd, _)) = decoded_fd(first_arg) {
                        fds.remove(&(call.pid, fd));
                    }
                }
                _ if call.is_sync() => {
                    if let Some((fd, decoded)) = decoded_fd(first_arg)
                        && let Some(path) = decoded.or_else(|| fds.get(&(call.pid, fd)).cloned())
                    {
                        synced.insert(index, path);
                    }
                }
                _ if call.is_rename() => {
                    let mut names = quoted_strings(&call.args).into_iter().map(os_path);
                    let (Some(from), Some(to)) = (names.next(), names.next()) else {
                        continue;
                    };
                    // rename(from, to) or renameat*(dirfd, from, dirfd, to, …).
                    let dirfds: Vec<&str> = if call.name == "rename" {
                        Vec::new()
                    } else {
                        call.args
                            .split(", ")
                            .filter(|a| !a.starts_with('"'))
                            .take(2)
                            .collect()
                    };
                    let absolute = |path: PathBuf, dirfd: Option<&&str>| {
                        if path.is_absolute() {
                            return path;
                        }
                        dirfd
                            .and_then(|d| dirfd_path(d, &fds, call.pid, cwd))
                            .unwrap_or_else(|| cwd.to_path_buf())
                            .join(path)
                    };
                    renamed.insert(
                        index,
                        (absolute(from, dirfds.first()), absolute(to, dirfds.get(1))),
                    );
                }
                _ => {}
            }
        }
        Trace {
            log,
            calls,
            synced,
            renamed,
        }
    }

    /// The log's lines that name `dir` (what a failure shows).
    fn excerpt(&self, dir: &Path) -> String {
        let dir = dir.to_string_lossy();
        self.log
            .lines()
            .filter(|l| l.contains(dir.as_ref()) && !l.contains("openat(") && !l.contains("close("))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The successful renames onto `target`, by index into `calls`.
    fn renames_onto(&self, target: &Path) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .renamed
            .iter()
            .filter(|(index, (_, to))| to == target && self.calls[**index].ok())
            .map(|(index, _)| *index)
            .collect();
        found.sort_unstable();
        found
    }

    /// A successful fsync/fdatasync of an fd open on `path` that began after line `after` and
    /// returned before line `before`.
    fn synced_between(&self, path: &Path, after: usize, before: usize) -> bool {
        self.synced.iter().any(|(index, synced)| {
            let call = &self.calls[*index];
            synced == path && call.ok() && call.began > after && call.returned < before
        })
    }

    /// Before the rename of `temp_tree` onto `tree`, every regular file now in `tree` was
    /// fsync'd under its temp path, or a syncfs on an fd inside the temp tree returned.
    #[track_caller]
    fn assert_tree_flushed_before_named(&self, tree: &Path) {
        let renames = self.renames_onto(tree);
        let rename_index = *renames.last().expect("the tree was renamed into place");
        let rename = &self.calls[rename_index];
        let (temp_tree, _) = &self.renamed[&rename_index];
        let syncfs = self.synced.iter().any(|(index, path)| {
            let call = &self.calls[*index];
            call.name == "syncfs"
                && call.ok()
                && path.starts_with(temp_tree)
                && call.returned < rename.began
        });
        if syncfs {
            return;
        }
        let mut files = Vec::new();
        let mut folders = vec![tree.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    folders.push(entry.path());
                } else if kind.is_file() {
                    files.push(entry.path());
                }
            }
        }
        for file in files {
            let temp = temp_tree.join(file.strip_prefix(tree).unwrap());
            // A file written atomically inside the tree (the marker) was fsync'd under its
            // own temp name, then renamed onto `temp`.
            let written_atomically = self.renames_onto(&temp).iter().any(|i| {
                let (source, _) = &self.renamed[i];
                self.synced_between(source, 0, self.calls[*i].began)
            });
            assert!(
                written_atomically || self.synced_between(&temp, 0, rename.began),
                "{} reached its final name before its bytes were on disk (no fsync of {} \
                 nor a syncfs before the rename):\n{}",
                file.display(),
                temp.display(),
                self.excerpt(tree.parent().unwrap())
            );
        }
    }

    /// `target` was given its name the durable way: a temp file beside it fsync'd, renamed
    /// onto it, then the folder fsync'd before the same process renamed anything else.
    /// Returns the line where the (last) rename returned, for order checks across files.
    #[track_caller]
    fn assert_replaced_durably(&self, target: &Path) -> usize {
        let folder = target.parent().expect("a file in a folder");
        let renames = self.renames_onto(target);
        assert!(
            !renames.is_empty(),
            "no rename onto {}:\n{}",
            target.display(),
            self.excerpt(folder)
        );
        for &index in &renames {
            let rename = &self.calls[index];
            let (temp, _) = &self.renamed[&index];
            assert_eq!(
                temp.parent(),
                Some(folder),
                "the temp file {} is beside {}",
                temp.display(),
                target.display()
            );
            assert!(
                self.synced_between(temp, 0, rename.began),
                "{} was not fsync'd under its temp name {} before the rename:\n{}",
                target.display(),
                temp.display(),
                self.excerpt(folder)
            );
            // The folder fsync belongs to this rename: it comes before the process's next one.
            let next_rename = self
                .renamed
                .keys()
                .map(|i| &self.calls[*i])
                .filter(|c| c.pid == rename.pid && c.began > rename.returned)
                .map(|c| c.began)
                .min()
                .unwrap_or(usize::MAX);
            assert!(
                self.synced_between(folder, rename.returned, next_rename),
                "the folder {} was not fsync'd after the rename onto {} (and before the next \
                 rename):\n{}",
                folder.display(),
                target.display(),
                self.excerpt(folder)
            );
        }
        self.calls[*renames.last().expect("not empty")].returned
    }
}

// ---- running the tools under strace ----

/// A folder for one test, by its real path (strace shows fds by their resolved paths).
fn work_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::canonicalize(dir.path()).unwrap();
    (dir, real)
}

/// Run `name` with `args` under `strace -f`, in `cwd`; the outcome and what strace saw.
fn traced(name: &str, args: &[&str], cwd: &Path) -> (Outcome, Trace) {
    let log = cwd.join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-y", "-s", "4096", "-e", TRACED, "-o"])
        .arg(&log)
        .arg(kit::bin(name))
        .args(args)
        .current_dir(cwd)
        .env_remove("UGW_HOST_ID")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    let out = run(cmd);
    assert!(
        log.is_file(),
        "strace could not trace {name} (ptrace not allowed here?): {}",
        out.stderr
    );
    let trace = Trace::read(&log, cwd);
    std::fs::remove_file(&log).unwrap();
    (out, trace)
}

// ---- each tool's final writes ----

#[test]
fn a_record_file_is_fsynced_renamed_and_its_folder_fsynced() {
    if !kit::require("strace") {
        return;
    }
    let (_keep, dir) = work_dir();
    let record = dir.join("upgrade.json");
    let check = ["--cmd", "true", "--once", "--record", s(&record)];
    // The run's first step (--new), then a step that appends to it.
    for extra in [&["--new"][..], &[]] {
        let args: Vec<&str> = check.iter().chain(extra).copied().collect();
        let (out, trace) = traced("ugw-wait-healthy", &args, &dir);
        out.succeeds();
        trace.assert_replaced_durably(&record);
    }
    let text = std::fs::read_to_string(&record).unwrap();
    assert_eq!(kit::parse_record(&text).steps.len(), 2, "{text}");
}

#[test]
fn a_fetched_file_is_fsynced_renamed_and_its_folder_fsynced() {
    if !kit::require("strace") {
        return;
    }
    let (_keep, dir) = work_dir();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let source = dir.join("app-v1.2.3-linux-amd64");
    std::fs::write(&source, &data).unwrap();
    let server = FileServer::start();
    let http = server.put("app-v1.2.4-linux-amd64", Served::new(&data));
    let staging = dir.join("staging");
    for url in [format!("file://{}", s(&source)), http] {
        let (out, trace) = traced(
            "ugw-fetch",
            &[
                "--url",
                &url,
                "--sha256",
                &sha256(&data),
                "--dest",
                s(&staging),
            ],
            &dir,
        );
        let step = out.succeeds().last_step();
        let staged = PathBuf::from(step.result["path"].as_str().unwrap());
        assert_eq!(staged.parent(), Some(staging.as_path()), "{url}");
        assert_eq!(std::fs::read(&staged).unwrap(), data, "{url}");
        trace.assert_replaced_durably(&staged);
    }
}

#[test]
fn an_extracted_folder_is_flushed_renamed_into_place_and_its_folder_fsynced() {
    if !kit::require("strace") {
        return;
    }
    let (_keep, dir) = work_dir();
    let archive = dir.join("app.tar");
    let tar = kit::hostile_archives::Tar::new().file(b"bin/app", b"#!/bin/sh\n");
    std::fs::write(&archive, tar.finish()).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    let staging = dir.join("staging");
    let url = format!("file://{}", s(&archive));
    let args = [
        "--url",
        &url,
        "--sha256",
        &sha256(&bytes),
        "--dest",
        s(&staging),
        "--extract",
        "--name",
        "app",
    ];
    let (out, trace) = traced("ugw-fetch", &args, &dir);
    out.succeeds();
    let released = staging.join("app");
    assert!(released.join("bin/app").is_file());
    // The tree's marker, written last inside the temp folder, fsyncs that folder (which the
    // assertion takes as the temp's fsync); then the rename and the staging folder's fsync.
    trace.assert_replaced_durably(&released);
    // A marker saying "extracted whole" over files still in the page cache would make a
    // power cut leave empty files that the next run takes as staged.
    trace.assert_tree_flushed_before_named(&released);
}

#[test]
fn a_backup_archive_and_its_sidecars_are_durable_and_the_checksum_comes_last() {
    if !kit::require("strace") {
        return;
    }
    let (_keep, dir) = work_dir();
    let src = dir.join("app");
    std::fs::create_dir_all(src.join("conf")).unwrap();
    std::fs::write(src.join("conf/app.toml"), b"port = 8080\n").unwrap();
    std::fs::write(src.join("data.bin"), vec![7u8; 100_000]).unwrap();
    let out_dir = dir.join("backups");
    let (out, trace) = traced(
        "ugw-backup",
        &[
            "create",
            "--path",
            s(&src),
            "--out",
            s(&out_dir),
            "--name",
            "b1",
        ],
        &dir,
    );
    let step = out.succeeds().last_step();
    let archive = PathBuf::from(step.result["archive"].as_str().unwrap());
    let file_name = archive.file_name().unwrap().to_str().unwrap();
    let base = file_name.strip_suffix(".tar.gz").expect("gzip by default");
    let manifest = out_dir.join(format!("{base}.manifest.json"));
    let checksum = out_dir.join(format!("{file_name}.sha256"));
    assert!(manifest.is_file() && checksum.is_file());
    let archive_named = trace.assert_replaced_durably(&archive);
    let manifest_named = trace.assert_replaced_durably(&manifest);
    let checksum_named = trace.assert_replaced_durably(&checksum);
    // A backup with its checksum is whole: the checksum is named after the rest is durable.
    assert!(
        archive_named < checksum_named && manifest_named < checksum_named,
        "the checksum sidecar was named before the archive or the manifest:\n{}",
        trace.excerpt(&out_dir)
    );
}

// ---- the parser on the shapes strace writes ----

#[test]
fn the_log_parser_joins_unfinished_calls_and_resolves_fds() {
    let log = "\
100 openat(AT_FDCWD</w>, \"/w/.f.x.tmp\", O_WRONLY|O_CREAT|O_EXCL, 0600) = 3</w/.f.x.tmp>
101 fsync(7</w/other> <unfinished ...>
100 fsync(3</w/.f.x.tmp>)        = 0
101 <... fsync resumed>) = 0
100 openat(AT_FDCWD, \"g\", O_RDONLY) = 4
100 fdatasync(4) = 0
100 close(4) = 0
100 rename(\"/w/.f.x.tmp\", \"/w/f\") = 0
100 renameat2(AT_FDCWD, \"h.tmp\", AT_FDCWD, \"h\", RENAME_NOREPLACE <unfinished ...>
100 +++ exited with 0 +++
100 <... renameat2 resumed>) = -1 EEXIST (File exists)
100 fsync(4) = 0
";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(&path, log).unwrap();
    let trace = Trace::read(&path, Path::new("/w"));
    let names: Vec<&str> = trace.calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "openat",
            "fsync",
            "fsync",
            "openat",
            "fdatasync",
            "close",
            "rename",
            "renameat2",
            "fsync"
        ]
    );
    let other = &trace.calls[2];
    assert_eq!((other.pid, other.began, other.returned), (101, 1, 3));
    assert_eq!(trace.synced[&1], Path::new("/w/.f.x.tmp"));
    assert_eq!(trace.synced[&4], Path::new("/w/g"), "the fd from openat");
    assert!(!trace.synced.contains_key(&8), "fd 4 was closed");
    assert_eq!(
        trace.renamed[&6],
        (PathBuf::from("/w/.f.x.tmp"), PathBuf::from("/w/f"))
    );
    assert_eq!(
        trace.renamed[&7],
        (PathBuf::from("/w/h.tmp"), PathBuf::from("/w/h")),
        "relative names resolved against the working folder"
    );
    let failed = &trace.calls[7];
    assert!(!failed.ok(), "{failed:?}");
    assert_eq!((failed.began, failed.returned), (8, 10));
    assert!(trace.calls[6].ok());
    assert_eq!(trace.renames_onto(Path::new("/w/f")), [6]);
    assert!(
        trace.renames_onto(Path::new("/w/h")).is_empty(),
        "it failed"
    );
}
