//! Checksum files as releases publish them, read the way `sha256sum -c` (GNU coreutils 9)
//! reads them: `sha256sum` output (`HASH  NAME`, `HASH *NAME` for binary mode, `HASH NAME`
//! as `md5 -r` writes it), BSD style (`SHA256 (NAME) = HASH`, also `sha256sum --tag`),
//! openssl's `SHA256(NAME)= HASH` (openssl 3 writes `SHA2-256(NAME)= HASH`), any of them with
//! GNU's `\` prefix for an escaped name, or a lone hash (`app.sha256`). Everything after the
//! mode character is the name, trailing spaces included: `app ` is not `app`.

use ugw_shared::digest::{parse_sha256, sha256_exactly};

/// The digest for the first of `names` the checksum file `text` lists (the operator's
/// `--name` before the URL's name). A name is matched exactly (after a leading `./`) first;
/// only when no line names it exactly does a line for `dir/NAME` count, and then only if
/// every such line agrees. A file holding one lone hash names it for whatever it came with.
pub(crate) fn find(text: &str, names: &[&str]) -> Result<String, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .collect();
    if let [only] = lines.as_slice()
        && let Some(hash) = parse_sha256(only)
    {
        return Ok(hash);
    }
    let entries = entries(&lines);
    let mut tried = Vec::new();
    for name in names {
        if tried.contains(name) {
            continue;
        }
        tried.push(name);
        if let Some(hash) = lookup(&entries, name)? {
            return Ok(hash);
        }
    }
    let tried: Vec<String> = tried.iter().map(|n| format!("'{n}'")).collect();
    Err(format!(
        "the checksum file has no SHA-256 line for {}",
        tried.join(" or ")
    ))
}

/// The digest one name has: exact lines first, then base-name lines if they agree.
fn lookup(entries: &[(String, String)], name: &str) -> Result<Option<String>, String> {
    let exact = entries
        .iter()
        .filter(|(_, file)| file.strip_prefix("./").unwrap_or(file) == name);
    if let Some(hash) = agreed(exact, || {
        format!("the checksum file lists {name} twice, with different digests")
    })? {
        return Ok(Some(hash));
    }
    let by_base = entries
        .iter()
        .filter(|(_, file)| file.rsplit('/').next() == Some(name));
    agreed(by_base, || {
        format!(
            "the checksum file has no line for {name} itself and lists files named {name} in \
             several folders with different digests; which one is meant is ambiguous"
        )
    })
}

/// The one digest the lines share, none if there are no lines, an error if they differ.
fn agreed<'a>(
    mut lines: impl Iterator<Item = &'a (String, String)>,
    conflict: impl FnOnce() -> String,
) -> Result<Option<String>, String> {
    let Some((first, _)) = lines.next() else {
        return Ok(None);
    };
    if lines.any(|(hash, _)| hash != first) {
        return Err(conflict());
    }
    Ok(Some(first.clone()))
}

/// Every well-formed line as `(hash, name)`; lines `sha256sum -c` would call improperly
/// formatted are left out, as it leaves them out.
fn entries(lines: &[&str]) -> Vec<(String, String)> {
    // Like coreutils, a file that started with `HASH  NAME` lines does not switch to
    // `HASH NAME` lines: that would let a name with a leading space or `*` mean another file.
    let mut reversed = None;
    lines
        .iter()
        .filter_map(|line| entry(line, &mut reversed))
        .collect()
}

/// One line: `(hash, file name)`. `reversed` is the file's `HASH NAME` state (see entries).
fn entry(line: &str, reversed: &mut Option<bool>) -> Option<(String, String)> {
    let line = line.trim_start_matches([' ', '\t']);
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let name = |raw: &str| {
        if escaped {
            unescape(raw)
        } else {
            Some(raw.to_string())
        }
    };
    for tag in ["SHA256", "SHA2-256"] {
        if let Some(rest) = line.strip_prefix(tag) {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let rest = rest.strip_prefix('(')?;
            let (file, hash) = rest.rsplit_once(')')?;
            let hash = hash.trim_start_matches([' ', '\t']).strip_prefix('=')?;
            return Some((
                sha256_exactly(hash.trim_start_matches([' ', '\t']))?,
                name(file)?,
            ));
        }
    }
    let separator = line.find([' ', '\t'])?;
    let hash = sha256_exactly(&line[..separator])?;
    let rest = &line[separator + 1..];
    let file = if rest.len() == 1 || !rest.starts_with([' ', '*']) {
        if *reversed == Some(false) {
            return None;
        }
        *reversed = Some(true);
        rest
    } else if *reversed == Some(true) {
        rest
    } else {
        *reversed = Some(false);
        &rest[1..]
    };
    Some((hash, name(file)?))
}

/// GNU's escaped name: `\\` is a backslash, `\n` a newline, `\r` a carriage return; any
/// other escape makes the line malformed, as it does for `sha256sum -c`.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn one(text: &str, name: &str) -> Result<String, String> {
        find(text, &[name])
    }

    #[test]
    fn every_published_form_is_read() {
        let gnu = format!("{B}  app-1.0.tar.gz\n{A}  app-1.1.tar.gz\n");
        assert_eq!(one(&gnu, "app-1.1.tar.gz").unwrap(), A);
        let binary = format!("{B} *other\n{A} *app-1.1.tar.gz\n");
        assert_eq!(one(&binary, "app-1.1.tar.gz").unwrap(), A);
        let bsd = format!("SHA256 (app-1.1.tar.gz) = {A}\n");
        assert_eq!(one(&bsd, "app-1.1.tar.gz").unwrap(), A);
        let openssl = format!("SHA256(app-1.1.tar.gz)= {A}\nSHA2-256(b)= {B}\n");
        assert_eq!(one(&openssl, "app-1.1.tar.gz").unwrap(), A);
        assert_eq!(one(&openssl, "b").unwrap(), B);
        let nested = format!("{A}  ./dist/app-1.1.tar.gz\n");
        assert_eq!(one(&nested, "app-1.1.tar.gz").unwrap(), A);
        assert_eq!(
            one(&format!("{}\n", A.to_uppercase()), "anything").unwrap(),
            A
        );
        let escaped = format!("\\{A}  a\\\\b\\nc\n\\SHA256 (d\\\\e) = {B}\n");
        assert_eq!(one(&escaped, "a\\b\nc").unwrap(), A);
        assert_eq!(one(&escaped, "d\\e").unwrap(), B);
    }

    #[test]
    fn the_exact_name_wins_over_a_base_name_and_names_are_exact() {
        let tree = format!("{A}  app\n{B}  dist/app\n{B}  ./old/app\n");
        assert_eq!(one(&tree, "app").unwrap(), A);
        let only_nested = format!("{A}  linux/app\n{B}  mac/app\n");
        assert!(one(&only_nested, "app").unwrap_err().contains("ambiguous"));
        let trailing = format!("{A}  app \n");
        assert!(one(&trailing, "app").is_err());
        assert_eq!(one(&trailing, "app ").unwrap(), A);
        let assets = format!("{A}  app-v1.0.0.tar.gz\n");
        assert_eq!(find(&assets, &["app-v1.0.0.tar.gz", "12345"]).unwrap(), A);
        let err = find(&assets, &["app", "12345"]).unwrap_err();
        assert!(err.contains("'app' or '12345'"), "{err}");
    }

    #[test]
    fn a_missing_or_ambiguous_line_fails_closed() {
        let gnu = format!("{B}  app-1.0.tar.gz\n");
        assert!(
            one(&gnu, "app-1.1.tar.gz")
                .unwrap_err()
                .contains("no SHA-256 line")
        );
        assert!(one(&format!("{B}  app-1.0.tar.gz.sig\n"), "app-1.0.tar.gz").is_err());
        let twice = format!("{A}  app\n{B}  ./app\n");
        assert!(one(&twice, "app").unwrap_err().contains("twice"));
        assert!(one("not a hash\n", "app").is_err());
        assert!(one("", "app").is_err());
        assert!(one(&format!("\\{A}  a\\qb\n"), "a\\qb").is_err());
        let mixed = format!("{B}  first\n{A} app\n");
        assert!(one(&mixed, "app").is_err());
    }
}
