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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_v_and_blanks_do_not_matter() {
        assert!(same("v1.1.0", "1.1.0"));
        assert!(same(" V1.1.0\n", "1.1.0"));
        assert!(!same("v1.1.0", "1.1.1"));
        assert_eq!(normalize("version"), "version");
        assert_eq!(normalize("v"), "v");
    }
}
