//! Free space on the file system a tool is about to write to, checked before writing so that
//! a full disk is a clear `no_space` refusal instead of a half-written file. Tests cannot fill
//! a real file system without privileges, so `UGW_FAKE_FREE_BYTES` stands in for the answer.

use crate::error::{Error, ErrorKind, Result};
use std::path::Path;

/// The variable tests set to pretend a file system has this many free bytes.
pub const FAKE_FREE_ENV: &str = "UGW_FAKE_FREE_BYTES";

/// Bytes an unprivileged writer may still use in the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Result<u64> {
    if let Some(fake) = std::env::var(FAKE_FREE_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Ok(fake);
    }
    let stat = rustix::fs::statvfs(dir).map_err(|e| {
        Error::io(
            format!("cannot read the free space of {}", dir.display()),
            &e.into(),
        )
    })?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Refuse with `no_space` unless `needed` bytes fit in `dir`'s file system.
pub fn ensure_room(dir: &Path, needed: u64, what: &str) -> Result<()> {
    let free = free_bytes(dir)?;
    if free < needed {
        return Err(Error::new(
            ErrorKind::NoSpace,
            format!(
                "{what} needs up to {} but {} has {} free; nothing was written",
                human_bytes(needed),
                dir.display(),
                human_bytes(free)
            ),
        ));
    }
    Ok(())
}

/// `1.5 GiB`, `320 KiB`, `12 B`.
#[must_use]
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_folder_has_some_room_and_too_much_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        ensure_room(dir.path(), 1, "a byte").unwrap();
        let err = ensure_room(dir.path(), u64::MAX, "everything").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NoSpace);
        assert!(
            err.message.contains("everything needs up to"),
            "{}",
            err.message
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
