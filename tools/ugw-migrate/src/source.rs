//! The migration files on disk: `DIR/<version>_<name>.sql` (pre-deploy) and
//! `DIR/post/<version>_<name>.sql` (post-deploy), their checksums and their directives.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use ugw_shared::{Error, Result};

/// The algorithm of every checksum this version writes into the ledger.
pub const CHECKSUM_ALGORITHM: &str = "sha256";
/// A migration file larger than this is not a migration (a dump copied by mistake).
const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Pre,
    Post,
}

impl Phase {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
        }
    }
}

/// One migration file, read and normalised.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub phase: Phase,
    pub path: PathBuf,
    /// The file's text with a BOM stripped: what runs, byte for byte (a CR LF inside a
    /// string literal is data).
    pub sql: String,
    /// Of the text with CRLF read as LF (see [`normalise`]).
    pub checksum: String,
    /// `-- ugw:no-transaction` on the first line.
    pub no_transaction: bool,
    /// `-- ugw:foreign-keys-off` on the first line (SQLite table rebuilds).
    pub foreign_keys_off: bool,
}

impl Migration {
    /// `0001_add_email.sql` or `post/0002_drop_name.sql`, as messages name it.
    #[must_use]
    pub fn file_name(&self) -> String {
        let base = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.phase {
            Phase::Pre => base,
            Phase::Post => format!("post/{base}"),
        }
    }
}

/// Every migration of `dir`, by version, and a note for each file that looks like one but
/// was skipped; two files with one version are a usage error.
pub fn load(dir: &Path) -> Result<(Vec<Migration>, Vec<String>)> {
    if !dir.is_dir() {
        return Err(Error::usage(format!(
            "the migrations folder {} does not exist (--dir)",
            dir.display()
        )));
    }
    let mut by_version: BTreeMap<i64, Migration> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (folder, phase) in [
        (dir.to_path_buf(), Phase::Pre),
        (dir.join("post"), Phase::Post),
    ] {
        if phase == Phase::Post && !folder.is_dir() {
            continue;
        }
        for migration in load_folder(&folder, phase, &mut skipped)? {
            if let Some(other) = by_version.get(&migration.version) {
                return Err(Error::usage(format!(
                    "version {} is used twice: {} and {} (versions are unique across DIR and DIR/post)",
                    migration.version,
                    other.file_name(),
                    migration.file_name()
                )));
            }
            by_version.insert(migration.version, migration);
        }
    }
    Ok((by_version.into_values().collect(), skipped))
}

fn load_folder(folder: &Path, phase: Phase, skipped: &mut Vec<String>) -> Result<Vec<Migration>> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| Error::io(format!("cannot list {}", folder.display()), &e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::io(format!("cannot list {}", folder.display()), &e))?;
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file_name.strip_suffix(".sql") else {
            let extension = file_name.rsplit_once('.').map(|(_, e)| e);
            if extension.is_some_and(|e| e.eq_ignore_ascii_case("sql")) {
                skipped.push(format!(
                    "skipped {}: a migration's name ends in .sql, in lower case (rename it to run it)",
                    path.display()
                ));
            }
            continue;
        };
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io(format!("cannot look at {}", path.display()), &e))?;
        if file_type.is_symlink() {
            // Read through, the file checked and the file run could differ; a dangling
            // one would be a migration silently missing.
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let state = if path.exists() {
                ""
            } else {
                ", which does not exist"
            };
            return Err(Error::usage(format!(
                "{} is a symbolic link (to {target}{state}); migrations are read from regular files only: \
                 put the file itself in the folder",
                path.display()
            )));
        }
        if !file_type.is_file() {
            skipped.push(format!("skipped {}: not a regular file", path.display()));
            continue;
        }
        let (version, name) = parse_stem(stem).ok_or_else(|| {
            Error::usage(format!(
                "{}: a migration is named <version>_<name>.sql with an unsigned integer version (0001_add_email.sql)",
                path.display()
            ))
        })?;
        let bytes = ugw_shared::atomic::read_capped(&path, MAX_FILE_BYTES)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::usage(format!("{}: not UTF-8 text", path.display())))?;
        let sql = psql_markers_as_comments(text.strip_prefix('\u{FEFF}').unwrap_or(&text));
        let first_line = sql.lines().next().unwrap_or_default();
        out.push(Migration {
            version,
            name: name.to_string(),
            phase,
            checksum: checksum(&normalise(&sql)),
            // sqlx writes `-- no-transaction` on the first line: the same directive.
            no_transaction: has_directive(first_line, "no-transaction")
                || first_line.trim() == "-- no-transaction",
            foreign_keys_off: has_directive(first_line, "foreign-keys-off"),
            sql,
            path,
        });
    }
    Ok(out)
}

/// The two psql meta-commands `pg_dump` writes around a plain dump (`\restrict KEY`,
/// `\unrestrict KEY`) are for psql, not the server: read as comments, so a history that
/// starts from `pg_dump --schema-only` runs. Every other byte (and every line) stays.
fn psql_markers_as_comments(text: &str) -> String {
    let is_marker = |line: &str| {
        let line = line.trim_end_matches(['\r', '\n']);
        ["\\restrict ", "\\unrestrict "].iter().any(|m| {
            line.strip_prefix(m).is_some_and(|key| {
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
    };
    if !text.lines().any(is_marker) {
        return text.to_string();
    }
    text.split_inclusive('\n')
        .map(|line| {
            if is_marker(line) {
                format!("-- psql: {line}")
            } else {
                line.to_string()
            }
        })
        .collect()
}

/// `0001_add_email` → `(1, "add_email")`. Versions fit a signed 64-bit ledger column.
fn parse_stem(stem: &str) -> Option<(i64, &str)> {
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name))
}

/// A BOM stripped and CRLF read as LF: an editor or a checkout that changes only these does
/// not change the migration.
#[must_use]
pub fn normalise(text: &str) -> String {
    text.strip_prefix('\u{FEFF}')
        .unwrap_or(text)
        .replace("\r\n", "\n")
}

#[must_use]
pub fn checksum(sql: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, sql.as_bytes());
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Whether the first line holds `-- ugw:WORD` (among other directives).
fn has_directive(first_line: &str, word: &str) -> bool {
    first_line
        .trim()
        .strip_prefix("--")
        .is_some_and(|rest| rest.split_whitespace().any(|w| w == format!("ugw:{word}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_phases_and_directives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("post")).unwrap();
        std::fs::write(
            dir.path().join("0002_b.sql"),
            "-- ugw:no-transaction\nCREATE INDEX i ON t(a);",
        )
        .unwrap();
        std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE t(a int);").unwrap();
        std::fs::write(
            dir.path().join("post/20261121235901_drop.sql"),
            "-- ugw:foreign-keys-off\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a migration").unwrap();
        let (all, skipped) = load(dir.path()).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let summary: Vec<_> = all
            .iter()
            .map(|m| (m.version, m.phase, m.no_transaction, m.foreign_keys_off))
            .collect();
        assert_eq!(
            summary,
            [
                (1, Phase::Pre, false, false),
                (2, Phase::Pre, true, false),
                (20_261_121_235_901, Phase::Post, false, true)
            ]
        );
        assert_eq!(all[2].file_name(), "post/20261121235901_drop.sql");
        std::fs::write(dir.path().join("post/0001_again.sql"), "").unwrap();
        assert!(load(dir.path()).unwrap_err().message.contains("used twice"));
        std::fs::write(dir.path().join("x1_bad.sql"), "").unwrap();
        assert_eq!(load(dir.path()).unwrap_err().exit, 2);
    }

    #[test]
    fn a_bom_and_crlf_do_not_change_the_checksum() {
        let plain = checksum(&normalise("SELECT 1;\nSELECT 2;\n"));
        assert_eq!(
            checksum(&normalise("\u{FEFF}SELECT 1;\r\nSELECT 2;\r\n")),
            plain
        );
        assert_ne!(checksum(&normalise("SELECT 1;\nSELECT 3;\n")), plain);
        assert_eq!(plain.len(), 64);
    }

    #[test]
    fn psql_markers_of_a_dump_are_comments_and_nothing_else_moves() {
        let dump = "--\n-- dump\n--\n\n\\restrict Ab12\r\nSET x = 1;\n\\unrestrict Ab12\n";
        let got = psql_markers_as_comments(dump);
        assert_eq!(
            got,
            "--\n-- dump\n--\n\n-- psql: \\restrict Ab12\r\nSET x = 1;\n-- psql: \\unrestrict Ab12\n"
        );
        let other = "SELECT 1;\n\\restrict bad key\n\\i other.sql\n";
        assert_eq!(psql_markers_as_comments(other), other);
    }

    /// Issue 19, item 16: other tools' conventions, and what is skipped is said.
    #[test]
    fn sqlx_no_transaction_upper_case_names_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("0001_a.sql"),
            "-- no-transaction\nSELECT 1;",
        )
        .unwrap();
        std::fs::write(dir.path().join("0002_b.SQL"), "SELECT 2;").unwrap();
        let (all, skipped) = load(dir.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].no_transaction);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("0002_b.SQL") && skipped[0].contains("lower case"));
        std::os::unix::fs::symlink("/nonexistent/0003.sql", dir.path().join("0003_c.sql")).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert_eq!(err.exit, 2);
        assert!(
            err.message.contains("0003_c.sql is a symbolic link")
                && err.message.contains("does not exist"),
            "{}",
            err.message
        );
        std::fs::remove_file(dir.path().join("0003_c.sql")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("0001_a.sql"), dir.path().join("0003_c.sql"))
            .unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(
            err.message.contains("regular files only"),
            "{}",
            err.message
        );
    }
}
