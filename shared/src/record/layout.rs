//! The whitespace of JSON text, redone without touching its tokens: how an earlier step that
//! came in indented goes out compact, and how a record is indented.

use std::borrow::Cow;

/// JSON text without whitespace between its tokens (a step that came in indented).
pub(super) fn compact(text: &str) -> Cow<'_, str> {
    if text.bytes().any(is_blank) {
        Cow::Owned(relayout(text, false))
    } else {
        Cow::Borrowed(text)
    }
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Valid JSON text with the whitespace between its tokens redone: none, or `serde_json`'s
/// pretty layout (two spaces a level). Strings, numbers and the order of fields are kept
/// byte for byte.
pub(super) fn relayout(text: &str, pretty: bool) -> String {
    fn newline(out: &mut String, pretty: bool, depth: usize) {
        if pretty {
            out.push('\n');
            out.extend(std::iter::repeat_n("  ", depth));
        }
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(if pretty { text.len() * 2 } else { text.len() });
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let end = string_end(bytes, i);
                out.push_str(&text[i..end]);
                i = end;
                continue;
            }
            open @ (b'{' | b'[') => {
                out.push(char::from(open));
                let next = (i + 1..bytes.len())
                    .find(|&j| !is_blank(bytes[j]))
                    .unwrap_or(bytes.len());
                if let Some(&close @ (b'}' | b']')) = bytes.get(next) {
                    out.push(char::from(close)); // empty: `{}`, `[]`
                    i = next + 1;
                    continue;
                }
                depth += 1;
                newline(&mut out, pretty, depth);
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                newline(&mut out, pretty, depth);
                out.push(char::from(close));
            }
            b',' => {
                out.push(',');
                newline(&mut out, pretty, depth);
            }
            b':' => out.push_str(if pretty { ": " } else { ":" }),
            b if is_blank(b) => {}
            _ => {
                // A number, true, false or null.
                let end = (i..bytes.len())
                    .find(|&j| is_blank(bytes[j]) || b",:{}[]\"".contains(&bytes[j]))
                    .unwrap_or(bytes.len());
                out.push_str(&text[i..end]);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Where the string that starts at `start` (its opening quote) ends, past its closing quote.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_their_bytes_whatever_they_hold() {
        let text = r#"{ "a\"{ ,}:[ ]\\" : [ 1.50e3 , "x\u00e9 y" , { } , [ ] ] }"#;
        let expected = r#"{"a\"{ ,}:[ ]\\":[1.50e3,"x\u00e9 y",{},[]]}"#;
        assert_eq!(compact(text), expected);
        // Text without a blank byte anywhere is taken as it is.
        assert!(matches!(compact(r#"{"a":[1,"b"]}"#), Cow::Borrowed(_)));
        assert_eq!(
            relayout(text, true),
            "{\n  \"a\\\"{ ,}:[ ]\\\\\": [\n    1.50e3,\n    \"x\\u00e9 y\",\n    {},\n    []\n  ]\n}"
        );
    }
}
