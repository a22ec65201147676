//! `--smoke CMD`'s `{}` (issue 20 item 19). Outside quotes, `{}` becomes the artifact's path
//! quoted for `sh`, one word whatever it holds. Inside a quoted string (`sh -c "test -f {}"`)
//! it is shell text that a second shell reads again, where no quoting of ours holds: an
//! artifact named `a$(touch PWNED).bin` would run `touch PWNED`. There the path is put in
//! only when it holds no shell metacharacter, and refused otherwise. `$UGW_ARTIFACT` and `$1`
//! carry it safely, where the shell that expands them is the last one to read the text
//! (`test -f "$1"`, `sh -c 'test -f "$UGW_ARTIFACT"'`).

use ugw_shared::{Error, ErrorKind, Result};

/// Characters a path may hold to be put into a quoted string of CMD as it is.
fn shell_inert(path: &str) -> bool {
    path.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._+,:@%=-".contains(&b))
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// CMD with each `{}` replaced by `path`, or `unsafe_input` when a `{}` inside a quoted
/// string would make the path shell text.
pub(crate) fn substitute(command: &str, path: &str) -> Result<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut out = String::with_capacity(command.len() + path.len());
    let mut quote = Quote::None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('{', _) if chars.peek() == Some(&'}') => {
                chars.next();
                if quote == Quote::None {
                    out.push_str(&shell_quote(path));
                } else if shell_inert(path) {
                    out.push_str(path);
                } else {
                    return Err(Error::new(
                        ErrorKind::UnsafeInput,
                        format!(
                            "--smoke has {{}} inside a quoted string, where it is shell text, \
                             and the artifact's path {path:?} holds shell metacharacters; use the \
                             variable in single quotes instead: sh -c 'test -f \"$UGW_ARTIFACT\"' \
                             (nothing was run)"
                        ),
                    ));
                }
                continue;
            }
            ('\\', Quote::None | Quote::Double) => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
                continue;
            }
            ('\'', Quote::None) => quote = Quote::Single,
            ('\'', Quote::Single) | ('"', Quote::Double) => quote = Quote::None,
            ('"', Quote::None) => quote = Quote::Double,
            _ => {}
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_are_one_word_outside_quotes_and_inert_text_inside() {
        assert_eq!(
            substitute("sh {}/bin/app --version", "/s/it's").unwrap(),
            "sh '/s/it'\\''s'/bin/app --version"
        );
        assert_eq!(
            substitute("sh -c \"test -f {}\"", "/s/app-1.2").unwrap(),
            "sh -c \"test -f /s/app-1.2\""
        );
        assert_eq!(
            substitute("echo '{}' \\\"{}", "/s/a").unwrap(),
            "echo '/s/a' \\\"'/s/a'"
        );
        for hostile in ["/s/a$(touch PWNED).bin", "/s/a`id`", "/s/a b", "/s/a\"b"] {
            let err = substitute("sh -c \"test -f {}\"", hostile).unwrap_err();
            assert_eq!(err.kind, ErrorKind::UnsafeInput, "{hostile}");
            assert!(
                substitute("sh -c 'test -f {}'", hostile).is_err(),
                "{hostile}"
            );
            assert!(substitute("test -f {}", hostile).is_ok(), "{hostile}");
        }
    }
}
