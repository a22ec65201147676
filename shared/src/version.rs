//! Version labels as operators write them: `v1.1.0`, `1.1.0` and ` V1.1.0 ` are one version.
//! Every comparison of versions in ugw goes through here.

/// The canonical form: trimmed, without a leading `v`/`V` before a digit.
#[must_use]
pub fn normalize(version: &str) -> &str {
    let trimmed = version.trim();
    match trimmed.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => trimmed,
    }
}

/// Whether two version labels name the same version.
#[must_use]
pub fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// File name endings that are not part of a version.
const ARCHIVE_ENDINGS: &[&str] = &[
    ".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tgz", ".tar", ".zip", ".gz", ".zst", ".exe",
];

/// The version in an artifact's file name: the first `-`/`_`-separated word that looks like
/// one (`v1.2.3`, `1.2.3`, `2026.5.17.post4`, `1.2.3rc1`), archive endings left out.
/// `app-linux-amd64` has none.
#[must_use]
pub fn from_file_name(name: &str) -> Option<String> {
    let stem = ARCHIVE_ENDINGS
        .iter()
        .find_map(|ending| name.strip_suffix(ending))
        .unwrap_or(name);
    // Another ending without digits (`.bin`, `.AppImage`) is not part of the version either.
    let stem = match stem.rsplit_once('.') {
        Some((rest, ending)) if ending.chars().all(|c| c.is_ascii_alphabetic()) => rest,
        _ => stem,
    };
    stem.split(['-', '_'])
        .find(|word| looks_like_version(word))
        .map(str::to_string)
}

/// `v`, then numbers joined by dots (at least two), then an optional label with digits.
fn looks_like_version(word: &str) -> bool {
    let rest = word.strip_prefix(['v', 'V']).unwrap_or(word);
    let numeric_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (numbers, label) = rest.split_at(numeric_end);
    let numbers = numbers.trim_end_matches('.');
    let parts: Vec<&str> = numbers.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| !p.is_empty())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_artifact_file_names() {
        for (name, version) in [
            ("app-v1.2.3-linux-amd64.tar.gz", Some("v1.2.3")),
            ("app-1.2.3.tgz", Some("1.2.3")),
            ("app_2026.5.17.post4.tar.zst", Some("2026.5.17.post4")),
            ("app-1.2.3rc1", Some("1.2.3rc1")),
            ("app_2026.5.17.post4.bin", Some("2026.5.17.post4")),
            ("app-10.0-x86_64.tar", Some("10.0")),
            ("app-linux-amd64", None),
            ("app-7", None),
            ("app", None),
        ] {
            assert_eq!(from_file_name(name).as_deref(), version, "{name}");
        }
    }

    #[test]
    fn leading_v_and_blanks_do_not_matter() {
        assert!(same("v1.1.0", "1.1.0"));
        assert!(same(" V1.1.0\n", "1.1.0"));
        assert!(!same("v1.1.0", "1.1.1"));
        assert_eq!(normalize("version"), "version");
        assert_eq!(normalize("v"), "v");
    }
}
