//! `--exclude` patterns: `*` and `?` within one name, `**` across folders. A pattern without a
//! `/` is matched against every name (as `tar --exclude`); one with a `/` against the path
//! below the backed-up folder and against the absolute path.

#[derive(Debug, Clone)]
pub struct Glob {
    pattern: Vec<u8>,
    anchored: bool,
}

impl Glob {
    #[must_use]
    pub fn new(pattern: &str) -> Self {
        let trimmed = pattern.trim_end_matches('/');
        Glob {
            pattern: trimmed.as_bytes().to_vec(),
            anchored: trimmed.contains('/'),
        }
    }

    /// Whether the entry with this `name`, at `relative` below its root and `absolute` on disk,
    /// is excluded.
    #[must_use]
    pub fn excludes(&self, name: &[u8], relative: &[u8], absolute: &[u8]) -> bool {
        if self.anchored {
            matches(&self.pattern, relative) || matches(&self.pattern, absolute)
        } else {
            matches(&self.pattern, name)
        }
    }
}

fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => {
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            (0..=text.len()).any(|i| matches(rest, &text[i..]))
        }
        [b'*', rest @ ..] => {
            let stop = text.iter().position(|&b| b == b'/').unwrap_or(text.len());
            (0..=stop).any(|i| matches(rest, &text[i..]))
        }
        [b'?', rest @ ..] => matches!(text, [c, more @ ..] if *c != b'/' && matches(rest, more)),
        [p, rest @ ..] => matches!(text, [c, more @ ..] if c == p && matches(rest, more)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_double_stars() {
        let log = Glob::new("*.log");
        assert!(log.excludes(b"a.log", b"x/a.log", b"/srv/x/a.log"));
        assert!(!log.excludes(b"a.log.gz", b"a.log.gz", b"/a.log.gz"));
        let cache = Glob::new("cache/**");
        assert!(cache.excludes(b"f", b"cache/a/b/f", b"/srv/cache/a/b/f"));
        assert!(!cache.excludes(b"f", b"data/f", b"/srv/data/f"));
        let one = Glob::new("tmp/*.tmp");
        assert!(one.excludes(b"a.tmp", b"tmp/a.tmp", b"/x/tmp/a.tmp"));
        assert!(!one.excludes(b"a.tmp", b"tmp/d/a.tmp", b"/x/tmp/d/a.tmp"));
        assert!(Glob::new("node_modules/").excludes(
            b"node_modules",
            b"a/node_modules",
            b"/a/node_modules"
        ));
        assert!(Glob::new("/srv/app/tmp").excludes(b"tmp", b"tmp", b"/srv/app/tmp"));
        assert!(Glob::new("?.txt").excludes(b"a.txt", b"a.txt", b"/a.txt"));
    }
}
