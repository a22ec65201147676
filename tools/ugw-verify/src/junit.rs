//! `--junit FILE`: one testcase per check, for GitLab's `artifacts:reports:junit` (and any CI
//! that reads `JUnit` XML), written with `atomic::write_atomic`; every text in it went through
//! the scrubber.

use std::fmt::Write as _;
use std::path::Path;
use ugw_shared::results::CheckResult;
use ugw_shared::scrub::Scrubber;
use ugw_shared::{Error, Result};

/// `--junit PATH` can be written: its folder exists, and (when `probe`) a file can be made
/// in it, found before any check runs (a smoke test's POST and DELETE are not run for a
/// report that cannot be written). A dry run only looks (`probe` false): it makes nothing.
pub fn check_writable(path: &Path, probe: bool) -> Result<()> {
    let refuse = |why: String| Error::usage(format!("--junit {}: {why}", path.display()));
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(refuse("is a folder; give a file name".into()));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(refuse(format!(
            "the folder {} does not exist",
            folder.display()
        )));
    }
    if probe {
        // The very temp file the report is written through, removed when it is dropped.
        ugw_shared::atomic::AtomicFile::create(path)
            .map_err(|e| refuse(format!("cannot be written ({})", e.message)))?;
    }
    Ok(())
}

/// The XML for `checks`, run in `seconds` on `host`.
pub fn render(checks: &[CheckResult], seconds: f64, host: &str, scrubber: &Scrubber) -> String {
    let text = |s: &str| escape(&scrubber.scrub_str(s));
    let failures = checks
        .iter()
        .filter(|c| matches!(c.outcome.as_str(), "failed" | "insufficient_data"))
        .count();
    let skipped = checks.iter().filter(|c| c.outcome == "skipped").count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // Writing to a String cannot fail.
    let _ = writeln!(
        xml,
        "<testsuites name=\"ugw-verify\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">",
        checks.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"ugw-verify\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\" hostname=\"{}\">",
        checks.len(),
        text(host)
    );
    for check in checks {
        let _ = writeln!(
            xml,
            "    <testcase name=\"{}\" classname=\"ugw-verify.{}\" time=\"{:.3}\">",
            text(&check.name),
            text(&check.kind),
            check.elapsed_ms as f64 / 1000.0
        );
        let why = text(check.message.as_deref().unwrap_or(""));
        let _ = match check.outcome.as_str() {
            "failed" | "insufficient_data" => writeln!(
                xml,
                "      <failure type=\"{}\" message=\"{why}\">expected: {}\nobserved: {}</failure>",
                if check.outcome == "failed" {
                    "check_failed"
                } else {
                    "insufficient_data"
                },
                text(&check.expected),
                text(&check.observed)
            ),
            "skipped" => writeln!(xml, "      <skipped message=\"{why}\"/>"),
            _ => Ok(()),
        };
        let _ = writeln!(
            xml,
            "      <system-out>expected: {}\nobserved: {}</system-out>\n    </testcase>",
            text(&check.expected),
            text(&check.observed)
        );
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry at all become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_cannot_break_the_document() {
        assert_eq!(
            escape("a<b>&\"'\u{1b}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}"
        );
    }
}
