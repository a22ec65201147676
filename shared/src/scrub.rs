//! The scrubber: applied at the single output point (the record and every stderr line) so
//! that no secret reaches a terminal, a log or a CI artifact, whatever code produced it.
//! Known secret values are replaced wherever they appear; secrets are also redacted by name
//! (URL user info, query parameters, headers and JSON fields whose names mark them secret).

use regex::{Captures, Regex};
use serde_json::Value;
use std::sync::{Arc, LazyLock, RwLock};

const MASK: &str = "***";

/// The word stems that make a name secret, shared by every rule below.
const SECRET_STEMS: &str = "token|secret|key|passw|pwd|signature|credential|authorization|cookie";

/// Header and field names whose values are secret.
static SECRET_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("(?i){SECRET_STEMS}")).expect("valid regex"));
/// `scheme://userinfo@` in URLs, also inside longer text; up to the last `@` of the authority,
/// since a password may hold one.
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s'"?#]*)@"#).expect("valid regex")
});
/// Secret query parameters: `?token=…`, `&X-Amz-Signature=…`, `sig=…`.
static QUERY_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)([?&;](?:[a-z0-9_.-]*(?:{SECRET_STEMS}|auth)[a-z0-9_.-]*|sig|pass|pw)=)([^&#\s'"]*)"#
    ))
    .expect("valid regex")
});
/// `Authorization: Bearer …`, `X-Auth-Key: …`, `password=…` inside free text.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)\b([a-z0-9_-]*(?:{SECRET_STEMS})[a-z0-9_-]*)(\s*:\s*[^\r\n,;'"]+|=[^&#\s,;'"]+)"#
    ))
    .expect("valid regex")
});
/// `"db_password": "…"` inside JSON held in a string (a body excerpt).
static JSON_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"(?i)("[^"\\]*(?:{SECRET_STEMS})[^"\\]*"\s*:\s*")((?:[^"\\]|\\.)*)""#
    ))
    .expect("valid regex")
});

/// Redacts known secret values wherever they appear, and secrets by name.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    values: Arc<RwLock<Vec<String>>>,
}

impl Scrubber {
    /// Remember a secret value (from `--header-env`, a URL password, a database password, …)
    /// so that it is replaced wherever it appears later, whole or as any of its words of eight
    /// characters or more (`Bearer abc…` leaks no `abc…` either). Values shorter than four
    /// characters are not masked everywhere (that would mangle the output) but still by name.
    pub fn add_secret(&self, value: &str) {
        let value = value.trim();
        let words = value
            .split_whitespace()
            .filter(|w| w.len() >= 8 && *w != value);
        let mut values = self
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for secret in std::iter::once(value).chain(words) {
            if secret.len() >= 4 && !values.iter().any(|v| v == secret) {
                values.push(secret.to_string());
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Remember the secrets a URL carries: its password (or user-only token), percent-decoded
    /// too, the `Basic` credentials an HTTP client makes of them, and secret query values.
    pub fn add_url_secrets(&self, url: &str) {
        let Some((_, rest)) = url.split_once("://") else {
            return;
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some((user, password)) = userinfo.split_once(':') {
                self.add_secret(password);
                let (user, password) = (percent_decode(user), percent_decode(password));
                self.add_secret(&password);
                self.add_secret(&base64(format!("{user}:{password}").as_bytes()));
            } else {
                let token = percent_decode(userinfo);
                self.add_secret(userinfo);
                self.add_secret(&token);
                self.add_secret(&base64(format!("{token}:").as_bytes()));
            }
        }
        let query = rest[authority_end..].split_once('?').map_or("", |(_, q)| q);
        for pair in query.split(['&', ';']) {
            if let Some((name, value)) = pair.split_once('=')
                && Self::is_secret_name(name)
            {
                self.add_secret(value);
                self.add_secret(&percent_decode(value));
            }
        }
    }

    /// Whether a header or field name marks its value as secret.
    #[must_use]
    pub fn is_secret_name(name: &str) -> bool {
        SECRET_NAME.is_match(name)
    }

    #[must_use]
    pub fn scrub_str(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in self
            .values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        let out = URL_USERINFO.replace_all(&out, |caps: &Captures| match caps[2].split_once(':') {
            Some((user, _)) => format!("{}{user}:{MASK}@", &caps[1]),
            None => format!("{}{MASK}@", &caps[1]),
        });
        let out = QUERY_SECRET.replace_all(&out, "${1}***");
        let out = JSON_FIELD.replace_all(&out, "${1}***\"");
        let out = HEADER_LINE.replace_all(&out, |caps: &Captures| {
            let sep = if caps[2].starts_with('=') { "=" } else { ": " };
            format!("{}{sep}{MASK}", &caps[1])
        });
        out.into_owned()
    }

    /// Scrub every string of a JSON value, and the values of fields with secret names.
    pub fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.scrub_str(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => {
                for (name, v) in map.iter_mut() {
                    if v.is_string() && Self::is_secret_name(name) {
                        *v = Value::String(MASK.to_string());
                    } else {
                        self.scrub_value(v);
                    }
                }
            }
            _ => {}
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding, as HTTP Basic credentials are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_names_are_masked() {
        let s = Scrubber::default();
        s.add_secret("s3cr3t-value");
        assert_eq!(s.scrub_str("got s3cr3t-value back"), "got *** back");
        assert_eq!(
            s.scrub_str("https://bob:hunter2@example.com/x?a=1&token=abc&X-Amz-Signature=ff#f"),
            "https://bob:***@example.com/x?a=1&token=***&X-Amz-Signature=***#f"
        );
        assert_eq!(
            s.scrub_str("Authorization: Bearer xyz"),
            "Authorization: ***"
        );
        assert_eq!(s.scrub_str("X-Auth-Key: k3y"), "X-Auth-Key: ***");
        assert_eq!(s.scrub_str("x-api-token=abc"), "x-api-token=***");
        assert_eq!(s.scrub_str("password=abc"), "password=***");
        assert_eq!(s.scrub_str("plain text 200 ok"), "plain text 200 ok");
    }

    #[test]
    fn url_userinfo_of_every_shape() {
        let s = Scrubber::default();
        assert_eq!(
            s.scrub_str("https://ghp_TOKEN@host/x"),
            "https://***@host/x"
        );
        assert_eq!(s.scrub_str("http://u:p@ss@host/x"), "http://u:***@host/x");
        assert_eq!(
            s.scrub_str("see http://host/path@x"),
            "see http://host/path@x"
        );
    }

    #[test]
    fn secrets_a_url_carries_are_masked_in_other_forms_too() {
        let s = Scrubber::default();
        s.add_url_secrets("http://deploy:pw%401234@host/h?token=qu3ry-s3cret&x=1");
        // What an HTTP client sends for that user info, echoed back by a server.
        let basic = base64(b"deploy:pw@1234");
        let echoed =
            format!(r#"{{"authorization":"Basic {basic}","x":"pw@1234","q":"qu3ry-s3cret"}}"#);
        let out = s.scrub_str(&echoed);
        assert!(
            !out.contains(&basic) && !out.contains("pw@1234") && !out.contains("qu3ry-s3cret"),
            "{out}"
        );
        assert_eq!(base64(b"deploy:pw"), "ZGVwbG95OnB3");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn header_env_values_are_masked_word_by_word() {
        let s = Scrubber::default();
        s.add_secret("Bearer abcdefgh12345678");
        assert_eq!(s.scrub_str("token abcdefgh12345678 seen"), "token *** seen");
    }

    #[test]
    fn json_fields_with_secret_names_are_masked() {
        let s = Scrubber::default();
        let mut v = serde_json::json!({
            "headers": {"Authorization": "Basic Zm9v", "Accept": "x"},
            "url": "http://u:p@h/",
            "body_excerpt": r#"{"db_password":"hunter2","api_token": "tok","ok":"yes"}"#,
        });
        s.scrub_value(&mut v);
        assert_eq!(v["headers"]["Authorization"], "***");
        assert_eq!(v["headers"]["Accept"], "x");
        assert_eq!(v["url"], "http://u:***@h/");
        assert_eq!(
            v["body_excerpt"],
            r#"{"db_password":"***","api_token": "***","ok":"yes"}"#
        );
    }
}
