//! Which live paths are mount points, read from `/proc/self/mountinfo`: a bind mount of a
//! folder of the same file system (or of a single file) has the same `st_dev` as its parent,
//! so comparing devices misses it, and a rename onto it fails with EBUSY.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Whether `path` (a folder or a file) is where something is mounted.
#[must_use]
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if meta.file_type().is_symlink() {
        return false;
    }
    let other_device = path
        .parent()
        .and_then(|parent| std::fs::metadata(parent).ok())
        .is_some_and(|parent| parent.dev() != meta.dev());
    if other_device {
        return true;
    }
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    std::fs::read("/proc/self/mountinfo").is_ok_and(|table| mount_points(&table).contains(&real))
}

/// The mount point (the fifth field) of each line of a mountinfo table.
fn mount_points(table: &[u8]) -> Vec<PathBuf> {
    table
        .split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(field))))
        .collect()
}

/// mountinfo writes a space, tab, newline and backslash in a path as `\ooo` (octal).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|digits| field[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        if let Some(digits) = octal {
            let value = digits
                .iter()
                .fold(0u32, |value, d| value * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_with_their_escapes() {
        let table = b"36 35 98:0 /mnt1 /srv/my\\040data rw,noatime master:1 - ext3 /dev/root rw\n\
                      37 35 98:0 / / rw - ext4 /dev/sda1 rw\n";
        assert_eq!(
            mount_points(table),
            [PathBuf::from("/srv/my data"), PathBuf::from("/")]
        );
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(Path::new("/proc/self/mountinfo-nope")));
    }
}
