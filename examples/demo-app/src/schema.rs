//! The demo service's database: a release can require columns (`--require-column
//! items.note`) and is not ready until a migration has added them, the way a real release
//! that reads a new column must wait for its pre-deploy migration.

use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

/// A `TABLE.COLUMN` the release reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub table: String,
    pub column: String,
}

impl Column {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once('.') {
            Some((table, column)) if !table.is_empty() && !column.is_empty() => Ok(Column {
                table: table.to_owned(),
                column: column.to_owned(),
            }),
            _ => Err(format!(
                "--require-column: want TABLE.COLUMN, e.g. items.note, got {text:?}"
            )),
        }
    }
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// The database and what this release needs from it.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub db: Option<PathBuf>,
    pub required: Vec<Column>,
}

impl Schema {
    /// Why the database is not ready for this release, or `None` when it is. Opened afresh
    /// (read-only) on every probe, so a migration, or a restore that replaced the file, is
    /// seen at once.
    pub fn not_ready_because(&self) -> Option<String> {
        if self.required.is_empty() {
            return None;
        }
        let Some(db) = &self.db else {
            return Some("--require-column needs --db".into());
        };
        let connection = match Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(connection) => connection,
            Err(e) => return Some(format!("cannot open {}: {e}", db.display())),
        };
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|column| !has_column(&connection, column))
            .map(ToString::to_string)
            .collect();
        (!missing.is_empty()).then(|| format!("missing column {}", missing.join(", ")))
    }
}

fn has_column(connection: &Connection, column: &Column) -> bool {
    connection
        .query_row(
            "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
            [&column.table, &column.column],
            |_| Ok(()),
        )
        .optional()
        .is_ok_and(|found| found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table_and_column() {
        assert_eq!(
            Column::parse("items.note"),
            Ok(Column {
                table: "items".into(),
                column: "note".into()
            })
        );
        for bad in ["items", ".note", "items.", ""] {
            assert!(Column::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ready_once_the_column_exists() {
        let dir = std::env::temp_dir().join(format!("ugw-demo-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("app.db");
        let schema = Schema {
            db: Some(db.clone()),
            required: vec![Column::parse("items.note").unwrap()],
        };
        assert!(schema.not_ready_because().unwrap().contains("cannot open"));
        let connection = Connection::open(&db).unwrap();
        connection
            .execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
            .unwrap();
        assert_eq!(
            schema.not_ready_because().as_deref(),
            Some("missing column items.note")
        );
        connection
            .execute_batch("ALTER TABLE items ADD COLUMN note TEXT")
            .unwrap();
        assert_eq!(schema.not_ready_because(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
