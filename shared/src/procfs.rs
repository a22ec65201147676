//! Who is above us: the shells among our ancestors, whether each reads its script from
//! stdin, and what its fd 0 is. This is how a tool avoids eating a CI job's script.

use std::path::Path;

/// A file's identity, to tell whether two descriptors are the same open pipe or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// What our own fd 0 is, if it is open.
    #[must_use]
    pub fn of_stdin() -> Option<(Self, StdinKind)> {
        use rustix::fs::FileType;
        let stat = rustix::fs::fstat(rustix::stdio::stdin()).ok()?;
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Fifo => StdinKind::Pipe,
            FileType::Socket => StdinKind::Socket,
            FileType::RegularFile => StdinKind::File,
            _ => StdinKind::Other,
        };
        // The field types differ between architectures; both fit in u64 everywhere.
        #[allow(
            clippy::unnecessary_cast,
            reason = "the field types differ by architecture"
        )]
        let id = FileId {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        };
        Some((id, kind))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinKind {
    Pipe,
    Socket,
    File,
    /// A terminal is handled before; this is /dev/null and other devices.
    Other,
}

#[derive(Debug, Clone)]
pub struct Shell {
    pub pid: i32,
    pub name: String,
    /// It reads its commands from stdin: neither `-c` nor a script operand.
    pub reads_stdin: bool,
    /// Its fd 0, when we may look at it (not when it runs as another user).
    pub stdin: Option<FileId>,
    /// It has a controlling terminal: an interactive shell, whose fd 0 is that terminal.
    pub has_tty: bool,
}

const SHELLS: [&str; 9] = [
    "sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "ksh93", "yash",
];

/// The shells among our ancestors, nearest first; `None` where /proc is not available.
#[must_use]
pub fn shell_ancestors() -> Option<Vec<Shell>> {
    let proc = Path::new("/proc");
    if !proc.join("self/stat").exists() {
        return None;
    }
    let mut shells = Vec::new();
    let mut pid = std::os::unix::process::parent_id().cast_signed();
    // The chain is short; the bound guards against a /proc that lies.
    for _ in 0..256 {
        if pid <= 0 {
            break;
        }
        // PID 1 is examined too: in a container the job's shell often is PID 1.
        let Some(stat) = read_stat(pid) else {
            break;
        };
        let Stat { name, parent, tty } = stat;
        if SHELLS.contains(&name.trim_start_matches('-')) {
            let args = read_cmdline(pid).unwrap_or_default();
            let stdin = std::fs::metadata(format!("/proc/{pid}/fd/0"))
                .ok()
                .map(|m| FileId::of(&m));
            shells.push(Shell {
                pid,
                name,
                reads_stdin: reads_commands_from_stdin(args.get(1..).unwrap_or(&[])),
                stdin,
                has_tty: tty != 0,
            });
        }
        if pid == 1 {
            break;
        }
        pid = parent;
    }
    Some(shells)
}

struct Stat {
    name: String,
    parent: i32,
    /// The controlling terminal's device number; 0 for none.
    tty: i64,
}

/// From /proc/<pid>/stat: `comm` (which may hold spaces, parens and any bytes), the parent
/// pid and the controlling terminal.
fn read_stat(pid: i32) -> Option<Stat> {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    let mut rest = text[close + 1..].split_whitespace();
    let _state = rest.next()?;
    let parent = rest.next()?.parse().ok()?;
    let _group = rest.next()?;
    let _session = rest.next()?;
    let tty = rest.next()?.parse().ok()?;
    Some(Stat { name, parent, tty })
}

fn read_cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether a shell started with these arguments (after argv[0]) reads commands from stdin.
#[must_use]
pub fn reads_commands_from_stdin(args: &[String]) -> bool {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            return i + 1 >= args.len();
        }
        if matches!(arg, "-" | "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0") {
            return true;
        }
        if let Some(long) = arg.strip_prefix("--") {
            // bash's long options; two of them take a value.
            if matches!(long, "rcfile" | "init-file") {
                i += 1;
            }
            i += 1;
            continue;
        }
        if let Some(flags) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('+')) {
            if flags.contains('c') {
                return false;
            }
            if flags.contains('s') {
                return true;
            }
            if flags.contains('o') || flags.contains('O') {
                i += 1;
            }
            i += 1;
            continue;
        }
        // The first operand is the script file.
        return false;
    }
    true
}

/// The other processes holding `pipe` open for writing: who will write what we wait to read.
/// Only processes /proc lets us look into count (our own user's, or all of them as root).
#[must_use]
pub fn pipe_writers(pipe: FileId) -> Vec<(i32, String)> {
    let me = std::process::id().cast_signed();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut writers = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != me
            && holds_for_writing(pid, pipe)
            && let Some(stat) = read_stat(pid)
        {
            writers.push((pid, stat.name));
        }
    }
    writers
}

fn holds_for_writing(pid: i32, pipe: FileId) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        // The link's target is the pipe itself: same device and inode as ours.
        std::fs::metadata(fd.path()).is_ok_and(|m| FileId::of(&m) == pipe)
            && opened_for_writing(pid, &fd.file_name().to_string_lossy())
    })
}

/// From /proc/<pid>/fdinfo/<fd>: whether its access mode (`O_ACCMODE` of `flags:`, octal)
/// allows writing.
fn opened_for_writing(pid: i32, fd: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        })
        .is_some_and(|flags| flags & 0o3 != 0)
}

#[cfg(test)]
mod tests {
    use super::reads_commands_from_stdin as reads;
    use super::{FileId, pipe_writers};

    #[test]
    fn the_writers_of_a_pipe_are_the_processes_holding_its_write_end() {
        use std::os::fd::AsFd;
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let stat = rustix::fs::fstat(read.as_fd()).unwrap();
        #[allow(
            clippy::unnecessary_cast,
            reason = "the field types differ by architecture"
        )]
        let pipe = FileId {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        };
        // A reader only is not a writer; we ourselves are never counted.
        let mut reader = std::process::Command::new("sleep")
            .arg("5")
            .stdin(std::fs::File::from(read.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let mut writer = std::process::Command::new("sleep")
            .arg("5")
            .stdout(std::fs::File::from(write))
            .spawn()
            .unwrap();
        let found = pipe_writers(pipe);
        let _ = (reader.kill(), writer.kill(), reader.wait(), writer.wait());
        let writer_pid = writer.id().cast_signed();
        assert_eq!(found, vec![(writer_pid, "sleep".to_string())]);
        drop(read);
    }

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn shells_that_read_stdin_are_recognised() {
        assert!(reads(&v(&[])));
        assert!(reads(&v(&["--login"])));
        assert!(reads(&v(&["-e", "-o", "pipefail"])));
        assert!(reads(&v(&["-s", "arg1"])));
        assert!(reads(&v(&["-"])));
        assert!(reads(&v(&["/dev/stdin"])));
        assert!(!reads(&v(&["-c", "echo hi"])));
        assert!(!reads(&v(&["-ec", "echo hi"])));
        assert!(!reads(&v(&["./deploy.sh"])));
        assert!(!reads(&v(&["-e", "deploy.sh", "x"])));
        assert!(!reads(&v(&["--rcfile", "x", "script"])));
    }
}
