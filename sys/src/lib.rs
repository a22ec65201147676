//! ugw-sys: the only crate of the workspace with `unsafe` code. Each function here wraps a
//! system call that has no safe API in std or rustix, behind a safe signature whose
//! contract is written beside it, with the SAFETY reasoning for every `unsafe` block. Every
//! other crate (shared, the tools) has `#![forbid(unsafe_code)]`, so an unsafe call anywhere
//! else does not compile: it is either added here, reviewed as such, or done safely.

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::Command;

/// Run `child` in a forked copy of this process and return the child's pid to the parent.
/// The child never returns: it leaves with `_exit(child())`, no atexit handlers and no
/// flushing of buffers it shares with the parent.
///
/// The contract, which the caller keeps: `child` only computes, allocates and writes to file
/// descriptors it owns (glibc keeps `malloc` usable after a fork); it takes no lock another
/// thread of the parent may have held at the fork, starts no thread, and does not unwind out
/// (catch panics inside it).
pub fn fork_then_exit(child: impl FnOnce() -> i32) -> std::io::Result<i32> {
    // SAFETY: the child runs only `child`, under the contract above, then `_exit`s: it never
    // returns into the parent's code, whose locks and threads it does not have.
    let forked = unsafe { libc::fork() };
    match forked {
        0 => {
            let code = child();
            // SAFETY: `_exit` ends the child at once; nothing of the parent runs after it.
            unsafe { libc::_exit(code) }
        }
        pid if pid > 0 => Ok(pid),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The wait status (as `waitpid(2)` gives it) that a pidfd keeps for its process once the
/// process has ended and been reaped: `PIDFD_GET_INFO` with `PIDFD_INFO_EXIT` (Linux 6.15 and
/// later). `None` while it runs, or where the kernel does not keep it.
#[must_use]
pub fn pidfd_exit_status(pidfd: BorrowedFd<'_>) -> Option<i32> {
    // SAFETY: an all-zero `pidfd_info` is a valid value of this plain C struct (integers
    // only), and the kernel writes at most `sizeof(pidfd_info)` bytes into it.
    let mut info: libc::pidfd_info = unsafe { std::mem::zeroed() };
    info.mask = u64::from(libc::PIDFD_INFO_EXIT);
    // SAFETY: the borrowed pidfd is open for this call and `info` is a valid, writable
    // `pidfd_info`, which is what PIDFD_GET_INFO reads and fills in.
    let done = unsafe { libc::ioctl(pidfd.as_raw_fd(), libc::PIDFD_GET_INFO, &raw mut info) };
    (done == 0 && info.mask & u64::from(libc::PIDFD_INFO_EXIT) != 0).then_some(info.exit_code)
}

/// Make the program `command` starts the leader of a session of its own (`setsid(2)` in the
/// child before it runs the program), so that it outlives this process and the process group
/// it was started from. std offers `process_group`, not a new session.
pub fn in_new_session(command: &mut std::process::Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and calls only setsid(2), which
    // is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        })
    }
}

/// A read-only, private map of the first `len` bytes of a file, unmapped when dropped.
///
/// The contract, which the caller keeps: nobody writes the file while the map lives (a file
/// this process created and holds open, say), since a slice of it is handed out as `&[u8]`.
#[derive(Debug)]
pub struct Mapped {
    start: *mut c_void,
    len: usize,
}

impl Mapped {
    /// Map `len` bytes of `file` (`len` > 0; zero is refused, as mmap(2) does).
    pub fn new(file: &File, len: usize) -> std::io::Result<Self> {
        if len == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        // SAFETY: a fresh mapping of `len` > 0 bytes, placed by the kernel (no address given),
        // read-only and private: it aliases no Rust memory.
        let start = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::PRIVATE,
                file,
                0,
            )?
        };
        Ok(Mapped { start, len })
    }

    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `start` is a live read-only mapping of `len` bytes until `drop`, and the
        // slice borrows `self`, so it cannot outlive the mapping.
        unsafe { std::slice::from_raw_parts(self.start.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no slice of it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.start, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_forked_child_runs_its_closure_and_exits_with_its_code() {
        let (mut read, write) = std::io::pipe().unwrap();
        let pid = fork_then_exit(move || {
            let mut write = write;
            i32::from(write.write_all(b"from the child").is_err()) + 7
        })
        .unwrap();
        let mut said = String::new();
        read.read_to_string(&mut said).unwrap();
        assert_eq!(said, "from the child");
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        assert_eq!(status.exit_status(), Some(7));
    }

    #[test]
    fn a_map_reads_the_file_and_an_empty_one_is_refused() {
        let mut file = tempfile_in_tmp();
        file.write_all(b"mapped bytes").unwrap();
        let map = Mapped::new(&file, 12).unwrap();
        assert_eq!(map.bytes(), b"mapped bytes");
        assert!(Mapped::new(&file, 0).is_err());
    }

    #[test]
    fn a_command_in_a_new_session_leads_it() {
        let out = in_new_session(Command::new("sh").args(["-c", "ps -o sid= -p $$; echo $$"]))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words.len(), 2, "{text}");
        assert_eq!(
            words[0], words[1],
            "the shell is its session's leader: {text}"
        );
    }

    #[test]
    fn a_reaped_childs_status_is_read_from_its_pidfd_where_the_kernel_keeps_it() {
        let child = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
        let pid = rustix::process::Pid::from_raw(child.id().cast_signed()).unwrap();
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        let mut child = child;
        assert!(!child.wait().unwrap().success());
        // Linux 6.15 and later: the status 5 << 8; older kernels keep none.
        if let Some(status) = pidfd_exit_status(pidfd.as_fd()) {
            assert_eq!(status, 5 << 8);
        }
    }

    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!("ugw-sys-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let _ = std::fs::remove_file(&path);
        file
    }
}
