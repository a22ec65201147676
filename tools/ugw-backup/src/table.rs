//! `ugw-backup list` for people: on a terminal, a table of the backups on stderr (the record
//! on stdout stays what scripts read), so an operator sees what is there without jq.

use crate::catalog::Listed;
use std::path::Path;
use ugw_shared::space::human_bytes;

/// The table of `backups` (newest first), one line each, columns padded to their widest cell.
pub fn render(out: &Path, backups: &[Listed]) -> String {
    if backups.is_empty() {
        return format!("no backups in {}\n", out.display());
    }
    let header = ["ARCHIVE", "CREATED", "SIZE", "APP VERSION", "STATE"].map(str::to_string);
    let rows: Vec<[String; 5]> = backups
        .iter()
        .map(|b| {
            [
                Path::new(&b.archive)
                    .file_name()
                    .map_or_else(|| b.archive.clone(), |n| n.to_string_lossy().into_owned()),
                if b.created.is_empty() {
                    "-".to_string()
                } else {
                    b.created.clone()
                },
                human_bytes(b.bytes),
                b.app_version.clone().unwrap_or_else(|| "-".to_string()),
                b.state.clone(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = format!(
        "{} backup(s) in {}, newest first:\n",
        rows.len(),
        out.display()
    );
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_missing_values_show_a_dash() {
        let listed = |archive: &str, version: Option<&str>| Listed {
            archive: archive.to_string(),
            name: String::new(),
            bytes: 2048,
            created: "2026-12-07T10:00:00.000Z".to_string(),
            app_version: version.map(str::to_string),
            state: "complete".to_string(),
        };
        let text = render(
            Path::new("/b"),
            &[
                listed("/b/long-name.tar.gz", Some("1.4.2")),
                listed("/b/a.tar", None),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let state_at = lines[1].find("STATE").unwrap();
        assert_eq!(lines[2].find("complete"), Some(state_at), "{text}");
        assert!(lines[3].contains(" -  "), "{text}");
    }
}
