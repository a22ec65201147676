//! Checksum files as releases publish them: `sha256sum` output (`HASH  NAME`, `HASH *NAME`
//! for binary mode), BSD style (`SHA256 (NAME) = HASH`), or a lone hash (`app.sha256`).

use ugw_shared::digest::parse_sha256;

/// The digest for `name` in the checksum file `text`. A file holding one lone hash names it
/// for whatever it came with.
pub(crate) fn find(text: &str, name: &str) -> Result<String, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if let [only] = lines.as_slice()
        && let Some(hash) = parse_sha256(only)
    {
        return Ok(hash);
    }
    let mut found = None;
    for line in &lines {
        let Some((hash, file)) = entry(line) else {
            continue;
        };
        let file = file.strip_prefix("./").unwrap_or(file);
        let base = file.rsplit('/').next().unwrap_or(file);
        if file == name || base == name {
            match &found {
                Some(other) if other != &hash => {
                    return Err(format!(
                        "the checksum file lists {name} twice, with different digests"
                    ));
                }
                _ => found = Some(hash),
            }
        }
    }
    found.ok_or_else(|| format!("the checksum file has no SHA-256 line for {name}"))
}

/// One line: `(hash, file name)`.
fn entry(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix("SHA256 (") {
        let (file, hash) = rest.rsplit_once(") = ")?;
        return Some((parse_sha256(hash)?, file));
    }
    let (hash, file) = line.split_once(char::is_whitespace)?;
    let file = file.trim_start();
    let file = file.strip_prefix('*').unwrap_or(file);
    Some((parse_sha256(hash)?, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn every_published_form_is_read() {
        let gnu = format!("{B}  app-1.0.tar.gz\n{A}  app-1.1.tar.gz\n");
        assert_eq!(find(&gnu, "app-1.1.tar.gz").unwrap(), A);
        let binary = format!("{B} *other\n{A} *app-1.1.tar.gz\n");
        assert_eq!(find(&binary, "app-1.1.tar.gz").unwrap(), A);
        let bsd = format!("SHA256 (app-1.1.tar.gz) = {A}\n");
        assert_eq!(find(&bsd, "app-1.1.tar.gz").unwrap(), A);
        let nested = format!("{A}  ./dist/app-1.1.tar.gz\n");
        assert_eq!(find(&nested, "app-1.1.tar.gz").unwrap(), A);
        assert_eq!(
            find(&format!("{}\n", A.to_uppercase()), "anything").unwrap(),
            A
        );
    }

    #[test]
    fn a_missing_or_ambiguous_line_fails_closed() {
        let gnu = format!("{B}  app-1.0.tar.gz\n");
        assert!(
            find(&gnu, "app-1.1.tar.gz")
                .unwrap_err()
                .contains("no SHA-256 line")
        );
        assert!(find(&format!("{B}  app-1.0.tar.gz.sig\n"), "app-1.0.tar.gz").is_err());
        let twice = format!("{A}  app\n{B}  ./app\n");
        assert!(find(&twice, "app").unwrap_err().contains("twice"));
        assert!(find("not a hash\n", "app").is_err());
        assert!(find("", "app").is_err());
    }
}
