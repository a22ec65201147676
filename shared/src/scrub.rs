//! The scrubber: applied at the single output point (the record and every stderr line) so
//! that no secret reaches a terminal, a log or a CI artifact, whatever code produced it.

use regex::Regex;
use serde_json::Value;
use std::sync::{Arc, LazyLock, RwLock};

const MASK: &str = "***";

/// Header and field names whose values are secret.
static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(authorization|proxy-authorization|cookie|set-cookie|x-amz-signature|x-amz-security-token)$|token|secret|key|passw|signature|credential|api-?key")
        .expect("valid regex")
});
/// `scheme://user:password@` in URLs (also inside longer text).
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:'\x22]*):([^/@\s'\x22]*)@")
        .expect("valid regex")
});
/// Secret query parameters: `?token=…`, `&X-Amz-Signature=…`, `sig=…`.
static QUERY_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)([?&;](?:[a-z0-9_.-]*(?:token|key|secret|passw|signature|credential|auth)[a-z0-9_.-]*|sig|pass|pwd)=)([^&#\s'\x22]*)")
        .expect("valid regex")
});
/// `Authorization: Bearer …` and friends inside free text.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|[a-z0-9-]*(?:token|secret|api-key|apikey)[a-z0-9-]*)(\s*:\s*[^\r\n,;'\x22]+|=[^&\s,;'\x22]+)")
        .expect("valid regex")
});

/// Redacts known secret values wherever they appear, and secrets by name.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    values: Arc<RwLock<Vec<String>>>,
}

impl Scrubber {
    /// Remember a secret value (from `--header-env`, a database password, …) so that it is
    /// replaced wherever it appears later. Very short values are not masked everywhere
    /// (that would mangle the output) but still by name.
    pub fn add_secret(&self, value: &str) {
        let value = value.trim();
        if value.len() < 4 {
            return;
        }
        let mut values = self
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !values.iter().any(|v| v == value) {
            values.push(value.to_string());
            // Longest first, so a secret that contains another is masked whole.
            values.sort_by_key(|v| std::cmp::Reverse(v.len()));
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
        let out = URL_USERINFO.replace_all(&out, "${1}${2}:***@");
        let out = QUERY_SECRET.replace_all(&out, "${1}***");
        let out = HEADER_LINE.replace_all(&out, |caps: &regex::Captures| {
            let sep = if caps[2].starts_with('=') { "=" } else { ": " };
            format!("{}{sep}***", &caps[1])
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
        assert_eq!(s.scrub_str("x-api-token=abc"), "x-api-token=***");
        assert_eq!(s.scrub_str("plain text 200 ok"), "plain text 200 ok");
    }

    #[test]
    fn json_fields_with_secret_names_are_masked() {
        let s = Scrubber::default();
        let mut v = serde_json::json!({"headers": {"Authorization": "Basic Zm9v", "Accept": "x"}, "url": "http://u:p@h/"});
        s.scrub_value(&mut v);
        assert_eq!(v["headers"]["Authorization"], "***");
        assert_eq!(v["headers"]["Accept"], "x");
        assert_eq!(v["url"], "http://u:***@h/");
    }
}
