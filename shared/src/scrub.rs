//! The scrubber: applied at the single output point (the record and every stderr line) so
//! that no secret reaches a terminal, a log or a CI artifact, whatever code produced it.
//! Known secret values are replaced wherever they appear; secrets are also redacted by name
//! (URL user info, query parameters, headers and JSON fields whose names mark them secret).
//! Also here: [`excerpt`], the one way to show untrusted bytes, and [`escape_controls`], which
//! keeps remote text from driving the operator's terminal.

use base64::Engine;
use regex::{Captures, Regex};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::{LazyLock, RwLock};

const MASK: &str = "***";
/// Ends an excerpt that was cut.
const CUT: &str = "…";
/// How far past an excerpt's cut it is scrubbed, so that a known secret cut there is still seen
/// whole (tokens, passwords and keys are far shorter; a value found by its name is masked to
/// the window's end anyway). Not the whole body: that could be a megabyte per attempt.
const SCRUB_WINDOW: usize = 8 * 1024;

/// The secret values this process has learnt. One set per process, because a process runs
/// one step: a secret learnt anywhere (a flag, a URL, an environment variable) must be masked
/// in everything the process writes, including the excerpts cut deep inside a probe.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Last words of a name that make its value secret (`db_password`, `X-Auth-Token`, `apiKey`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "tokens",
    "authorization",
    "auth",
    "cookie",
    "credential",
    "credentials",
    "apikey",
    "jwt",
];
/// The words before a final `key` that make it a secret key (`api_key`, `X-Auth-Key`); any
/// other key (`public_key`, `key_id`, `monkey`) is an ordinary field.
const SECRET_KEY_KINDS: &[&str] = &[
    "api",
    "auth",
    "private",
    "access",
    "secret",
    "signing",
    "master",
    "encryption",
    "client",
    "session",
    "license",
    "account",
    "shared",
    "subscription",
    "application",
    "app",
    "service",
    "webhook",
];
/// Last words of a query parameter that make it secret there only: a URL's signature or key
/// grants access by itself (`X-Amz-Signature`, `sig`, `?key=`), a document's does not.
const SECRET_QUERY_WORDS: &[&str] = &["signature", "sig", "key", "pw"];

/// `scheme://userinfo@` in URLs, also inside longer text; up to the last `@` of the authority,
/// since a password may hold one.
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s'"?#]*)@"#).expect("valid regex")
});
/// `user:password@host:port` without a scheme (`--tcp`, a command line, a mistyped URL): the
/// host must end the token, so `image:1.2@sha256:…` and `git@host:repo` are left alone.
static BARE_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:^|[\s'"(\[=,])[a-z0-9._~%!$&*+-]+:([^\s@/'"]+)@(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]+)?(?:[/?#\s'")\],]|$)"#,
    )
    .expect("valid regex")
});
/// Query parameters (`?token=…`, `&X-Amz-Signature=…`); the name decides.
static QUERY_PARAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([?&;])([A-Za-z0-9_.-]+)=([^&#\s'"]*)"#).expect("valid regex"));
/// `Authorization: Bearer …`, `password=…` inside free text; the name decides.
static NAMED_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\b([A-Za-z0-9][A-Za-z0-9_.-]*)(\s*:\s*[^\s,;'"][^\r\n,;'"]*|=[^&#\s,;'"]+)"#)
        .expect("valid regex")
});
/// `"db_password": "…"` inside JSON held in a string (a body); the name decides. A value the
/// text ends in the middle of (a cut body) counts too.
static JSON_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""((?:[^"\\]|\\.)*)"(\s*:\s*")((?:[^"\\]|\\.)*)("|\\?$)"#).expect("valid regex")
});

/// Redacts known secret values wherever they appear, and secrets by name. Every scrubber of a
/// process shares the secrets learnt so far.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    _shared: (),
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
        let mut known = KNOWN
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for secret in std::iter::once(value).chain(words) {
            if secret.len() >= 4 && !known.iter().any(|v| v == secret) {
                known.push(secret.to_string());
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        known.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Remember the secrets a URL carries: its password (or user-only token), percent-decoded
    /// too, the `Basic` credentials an HTTP client makes of them, and secret query values.
    /// A URL written without its scheme (`user:pw@host/x`) counts: it is refused later, and
    /// the refusal quotes it.
    pub fn add_url_secrets(&self, url: &str) {
        let parts = UrlParts::of(url);
        match parts.userinfo {
            Some((user, Some(password))) => {
                self.add_secret(password);
                let (user, password) = (percent_decode(user), percent_decode(password));
                self.add_secret(&password);
                self.add_secret(&base64(format!("{user}:{password}").as_bytes()));
            }
            Some((token, None)) => {
                let decoded = percent_decode(token);
                self.add_secret(token);
                self.add_secret(&decoded);
                self.add_secret(&base64(format!("{decoded}:").as_bytes()));
            }
            None => {}
        }
        let query = parts.rest.split_once('?').map_or("", |(_, q)| q);
        for pair in query.split(['&', ';']) {
            if let Some((name, value)) = pair.split_once('=')
                && is_secret_query_name(name)
            {
                self.add_secret(value);
                self.add_secret(&percent_decode(value));
            }
        }
    }

    /// Whether a header or field name marks its value as secret. The rule is on the name's
    /// words (split at `_`, `-`, `.`, blanks and camelCase): the last word is a secret word
    /// (`password`, `token`, `secret`, `authorization`, `cookie`, …), or it is `key` after a
    /// word that makes it one (`api_key`, `private_key`, `X-Auth-Key`).
    #[must_use]
    pub fn is_secret_name(name: &str) -> bool {
        let words = words(name);
        let Some((last, before)) = words.split_last() else {
            return false;
        };
        SECRET_WORDS.contains(&last.as_str())
            || last == "key"
                && before
                    .last()
                    .is_some_and(|w| SECRET_KEY_KINDS.contains(&w.as_str()))
    }

    #[must_use]
    pub fn scrub_str(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in KNOWN
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
        let out = mask_bare_userinfo(&out);
        let out = mask_secret_query_values(&out);
        let out = JSON_FIELD.replace_all(&out, |caps: &Captures| {
            if Self::is_secret_name(&caps[1]) {
                format!("\"{}\"{}{MASK}\"", &caps[1], &caps[2])
            } else {
                caps[0].to_string()
            }
        });
        mask_named_values(&out)
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

/// The one way a URL is shown in a record or a message (`ugw-fetch`'s `url`,
/// `db::DbUrl::redacted`): without its user info, whole (a password is never shown, and a
/// lone user name may be a token: `https://ghp_…@host`), and with the value of every query
/// parameter whose name marks it secret masked (`?token=***`, `&password=***`, `&sig=***`).
/// The rest is kept as written. In free text, where a URL is not parsed, `scrub_str` masks
/// by the same names: `user:***@`, `***@`, `?token=***`.
#[must_use]
pub fn redacted_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    // Only a URL that cannot have user info (`data:`, `mailto:`) refuses these, and it has none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if let Some(query) = url.query() {
        let masked = mask_secret_query_values(&format!("?{query}")).into_owned();
        shown.set_query(masked.strip_prefix('?'));
    }
    shown.to_string()
}

/// Query parameters (`?token=…`, `&X-Amz-Signature=…`) whose name marks them secret, masked.
fn mask_secret_query_values(text: &str) -> Cow<'_, str> {
    QUERY_PARAM.replace_all(text, |caps: &Captures| {
        if is_secret_query_name(&caps[2]) {
            format!("{}{}={MASK}", &caps[1], &caps[2])
        } else {
            caps[0].to_string()
        }
    })
}

/// At most `max` bytes of untrusted bytes (a body, a command's output, input that is not a
/// record) for a human or a record. Scrubbed whole before anything is cut, so no cut leaves
/// part of a secret; control characters made visible, so it cannot drive a terminal; then cut
/// on a character boundary, never inside a mask or a made-visible character, with `…` where
/// it was cut; blanks at both ends dropped.
#[must_use]
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    // A window, not the whole body: a secret is far shorter than what lies past the cut.
    let window = &bytes[..bytes.len().min(max.saturating_add(SCRUB_WINDOW))];
    let text = Scrubber::default().scrub_str(&String::from_utf8_lossy(window));
    let visible = escape_controls(text.trim());
    if visible.len() <= max {
        return visible.into_owned();
    }
    let budget = max.saturating_sub(CUT.len());
    let mut out = String::with_capacity(max);
    for piece in pieces(&visible) {
        if out.len() + piece.len() > budget {
            break;
        }
        out.push_str(piece);
    }
    let mut out = out.trim_end().to_string();
    if max >= CUT.len() {
        out.push_str(CUT);
    }
    out
}

/// The text with every control character (and every bidirectional override, which reorders
/// what a terminal shows) written as a visible escape: `\n`, `\x1b`, `\u{202e}`. Remote and
/// upstream text can then neither move the cursor, recolour, retitle, nor fake a line.
#[must_use]
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The text in the units a cut must not split: a mask, a made-visible character (`\x1b`,
/// `\u{202e}`), or one character.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let c = rest.chars().next()?;
        let len = if rest.starts_with(MASK) {
            MASK.len()
        } else if c == '\\' {
            escape_len(rest)
        } else {
            c.len_utf8()
        };
        let (piece, tail) = rest.split_at(len);
        rest = tail;
        Some(piece)
    })
}

/// The length of the escape `text` starts with (as `escape_controls` writes them), or 1.
fn escape_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    match bytes.get(1) {
        // Only `\x` and two hex digits, as written above: a `\x` the text itself holds may
        // be followed by a character of several bytes, which the cut must not split.
        Some(b'x') if bytes.len() >= 4 && bytes[2..4].iter().all(u8::is_ascii_hexdigit) => 4,
        Some(b'u') => bytes
            .iter()
            .take(10)
            .position(|&b| b == b'}')
            .map_or(1, |end| end + 1),
        Some(b'n' | b'r' | b't' | b'\\') => 2,
        _ => 1,
    }
}

/// The passwords [`BARE_USERINFO`] finds. Matching resumes right after each password, so the
/// character ending one address can start the next.
fn mask_bare_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(caps) = BARE_USERINFO.captures_at(text, at) {
        let password = caps.get(1).expect("password");
        out.push_str(&text[at..password.start()]);
        out.push_str(MASK);
        at = password.end();
    }
    out.push_str(&text[at..]);
    out
}

/// `NAME: value` and `NAME=value` in free text, masked when NAME is a secret name. A name
/// that is not secret gives back only itself, so a secret right after it is still seen
/// (`note: password=x`).
fn mask_named_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(caps) = NAMED_VALUE.captures_at(text, at) {
        let (whole, name) = (caps.get(0).expect("match"), caps.get(1).expect("name"));
        out.push_str(&text[at..whole.start()]);
        let assignment = caps[2].starts_with('=');
        if Scrubber::is_secret_name(name.as_str())
            || assignment && is_secret_assignment_name(name.as_str())
        {
            let sep = if assignment { "=" } else { ": " };
            let _ = write!(out, "{}{sep}{MASK}", name.as_str());
            at = whole.end();
        } else {
            out.push_str(name.as_str());
            at = name.end();
        }
    }
    out.push_str(&text[at..]);
    out
}

/// Words that make an environment-style assignment secret anywhere in its name, not only as
/// its last word: `PGPASSWORD=`, `DBPASS=`, `MYSQL_PWD=`, `GITHUB_TOKEN=`, `SSH_KEYFILE_PASS=`.
const SECRET_ASSIGNMENT_PARTS: &[&str] = &["PASS", "PWD", "SECRET", "TOKEN", "KEY"];

/// Whether `NAME=` is a shell assignment whose name holds a secret word anywhere (issue 20
/// item 26). Only all-capital names (environment variables in a command line): a lower-case
/// field like `key_id=` or `monkey=` in prose keeps the word rule of [`Scrubber::is_secret_name`].
fn is_secret_assignment_name(name: &str) -> bool {
    !name.bytes().any(|b| b.is_ascii_lowercase())
        && SECRET_ASSIGNMENT_PARTS
            .iter()
            .any(|part| name.contains(part))
}

/// A URL cut as written, without decoding or checking anything (the one place ugw reads
/// user info out of a URL: the scrubber, `db`): the user info is what the authority holds
/// before its last `@`, the user before the first `:` in it, the password after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `(user, password)` as written (percent-encoded), when the authority has an `@`.
    pub userinfo: Option<(&'a str, Option<&'a str>)>,
    /// The host and port (empty in `postgres://user@/db`).
    pub host: &'a str,
    /// From the path on: `/db?sslmode=require#x`.
    pub rest: &'a str,
}

impl<'a> UrlParts<'a> {
    /// A URL's parts; one written without its scheme (`user:pw@host/x`) counts.
    #[must_use]
    pub fn of(url: &'a str) -> Self {
        let after_scheme = without_scheme(url);
        let authority_end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let (authority, rest) = after_scheme.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => UrlParts {
                userinfo: Some(match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                }),
                host,
                rest,
            },
            None => UrlParts {
                userinfo: None,
                host: authority,
                rest,
            },
        }
    }
}

/// A URL after its `scheme:` and slashes. `user:pw@host` has no scheme: no slash follows.
fn without_scheme(url: &str) -> &str {
    let after_scheme = url.split_once(':').and_then(|(scheme, rest)| {
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        (is_scheme && rest.starts_with('/')).then_some(rest)
    });
    after_scheme.unwrap_or(url).trim_start_matches('/')
}

fn is_secret_query_name(name: &str) -> bool {
    Scrubber::is_secret_name(name)
        || words(name)
            .last()
            .is_some_and(|w| SECRET_QUERY_WORDS.contains(&w.as_str()))
}

/// A name's words, lower case: split at anything not a letter or digit, and where camelCase
/// starts a word (`xApiKey`, `APIKey` → api, key).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let starts_word = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || p.is_uppercase() && next.is_some_and(|n| n.is_lowercase())
            });
        if starts_word && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Standard base64 with padding, as HTTP Basic credentials are written.
fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
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
        assert_eq!(s.scrub_str("note: password=abc"), "note: password=***");
        assert_eq!(s.scrub_str("plain text 200 ok"), "plain text 200 ok");
    }

    /// SQLite's `unrecognized token: "$"` names no secret: "token" is its word for a lexeme.
    /// A name followed by only blanks and a quote has no unquoted value to mask (issue 19
    /// item 19: the old rule took the blank as the value and printed `token: ***"$"`).
    #[test]
    fn a_name_with_no_unquoted_value_is_left_whole() {
        let s = Scrubber::default();
        assert_eq!(
            s.scrub_str(r#"near line 3: unrecognized token: "$""#),
            r#"near line 3: unrecognized token: "$""#
        );
        assert_eq!(s.scrub_str("token:  t0ken-value"), "token: ***");
        assert_eq!(s.scrub_str("password:"), "password:");
    }

    /// Passwords made of the characters a URL gives meaning to (`@ : / % # ?`).
    const HOSTILE_PASSWORDS: &[&str] = &["p@ss:w/rd", "50%off#1?x=y", "a/b?c#d@e:f%g", "::@@//"];

    fn encoded(password: &str) -> String {
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    }

    #[test]
    fn a_redacted_url_has_no_user_info_and_masks_secret_query_values_only() {
        for password in HOSTILE_PASSWORDS {
            let e = encoded(password);
            for text in [
                format!("https://deploy:{e}@example.com/a/app.tgz?x=1"),
                format!("https://{e}@example.com:8443/app.tgz"),
                format!("https://example.com/app.tgz?token={e}&x=1"),
                format!("https://example.com/app.tgz?X-Amz-Signature={e}#part"),
                format!("http://u:{e}@[::1]:8080/p?password={e};sig={e}"),
            ] {
                let url = url::Url::parse(&text).unwrap();
                let shown = redacted_url(&url);
                for leaked in [password.to_string(), e.clone()] {
                    assert!(!shown.contains(&leaked), "{text} shown as {shown}");
                }
                assert!(!shown.contains('@'), "no user info: {shown}");
            }
        }
        let url = |text: &str| redacted_url(&url::Url::parse(text).unwrap());
        assert_eq!(
            url("https://user:pw@example.com/a/app.tgz?x=1"),
            "https://example.com/a/app.tgz?x=1"
        );
        assert_eq!(
            url("https://ghp_TOKEN@example.com/x?token=abc&page=2&q=a%20b#f"),
            "https://example.com/x?token=***&page=2&q=a%20b#f",
            "the rest is kept as written"
        );
        assert_eq!(url("https://example.com/x"), "https://example.com/x");
    }

    #[test]
    fn a_url_is_cut_at_its_authority_and_the_last_at_sign_in_it() {
        let parts = UrlParts::of("postgres://app:p@ss:w@db:5432/shop?x=a@b#c");
        assert_eq!(parts.userinfo, Some(("app", Some("p@ss:w"))));
        assert_eq!((parts.host, parts.rest), ("db:5432", "/shop?x=a@b#c"));
        let parts = UrlParts::of("https://ghp_TOKEN@host");
        assert_eq!(
            (parts.userinfo, parts.host),
            (Some(("ghp_TOKEN", None)), "host")
        );
        let parts = UrlParts::of("postgres://app@/db?host=/run/postgresql");
        assert_eq!((parts.userinfo, parts.host), (Some(("app", None)), ""));
        let parts = UrlParts::of("user:pw@127.0.0.1:8080/ok");
        assert_eq!(parts.userinfo, Some(("user", Some("pw"))), "no scheme");
        let parts = UrlParts::of("http://host/path@x");
        assert_eq!(
            (parts.userinfo, parts.host),
            (None, "host"),
            "an @ in the path"
        );
    }

    #[test]
    fn a_hostile_password_never_survives_the_scrubber() {
        for password in HOSTILE_PASSWORDS {
            let e = encoded(password);
            let s = Scrubber::default();
            // As a URL carries it: encoded in the user info, or a query value.
            for text in [
                format!("https://deploy:{e}@example.com/a"),
                format!("https://example.com/a?password={e}"),
            ] {
                s.add_url_secrets(&text);
                let out = s.scrub_str(&format!("GET {text} failed; echo: {password} {e}"));
                for leaked in [password.to_string(), e.clone()] {
                    assert!(!out.contains(&leaked), "{out} shows {leaked}");
                }
            }
        }
        // Written raw, an `@` or `:` in the user info is still masked by its shape.
        let s = Scrubber::default();
        assert_eq!(
            s.scrub_str("https://u:p@ss:w@host/x"),
            "https://u:***@host/x"
        );
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
    fn a_url_without_its_scheme_still_gives_up_its_secrets() {
        let s = Scrubber::default();
        s.add_url_secrets("user:N0SchemePw77@127.0.0.1:8080/ok");
        s.add_url_secrets("//N0SchemeTok88@host/x");
        s.add_url_secrets("http:/u:OneSlashPw99@host/x");
        s.add_url_secrets("127.0.0.1:8080/no-user-info");
        // Known from now on, wherever they appear, not only inside an address.
        assert_eq!(
            s.scrub_str("N0SchemePw77 N0SchemeTok88 OneSlashPw99 127.0.0.1:8080"),
            "*** *** *** 127.0.0.1:8080"
        );
    }

    #[test]
    fn user_info_without_a_scheme_is_masked_in_any_text() {
        let s = Scrubber::default();
        assert_eq!(
            s.scrub_str("--tcp 'app:pw1@db:5432' is not HOST:PORT"),
            "--tcp 'app:***@db:5432' is not HOST:PORT"
        );
        assert_eq!(
            s.scrub_str("cmd 'psql a:p1@db/x b:p2@[::1]:5432'"),
            "cmd 'psql a:***@db/x b:***@[::1]:5432'"
        );
        for ordinary in [
            "pulled nginx:1.25@sha256:0a1b2c3d4e5f and git@github.com:org/repo.git",
            "at 12:30 the pool was full",
            "see http://host/path@x",
        ] {
            assert_eq!(s.scrub_str(ordinary), ordinary);
        }
    }

    #[test]
    fn secrets_a_url_carries_are_masked_in_other_forms_too() {
        let s = Scrubber::default();
        s.add_url_secrets("http://deploy:pw%401234@host/h?token=qu3ry-s3cret&x=1");
        // What an HTTP client sends for that user info, echoed back by a server.
        let basic = base64(b"deploy:pw@1234");
        let echoed = format!(r#"{{"echo":"Basic {basic}","x":"pw@1234","q":"qu3ry-s3cret"}}"#);
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

    #[test]
    fn secret_names_are_whole_words() {
        for secret in [
            "password",
            "passwd",
            "DB_PASSWORD",
            "token",
            "GITHUB_TOKEN",
            "X-Auth-Token",
            "api_key",
            "apiKey",
            "APIKey",
            "apikey",
            "x-api-key",
            "X-Auth-Key",
            "secret",
            "client_secret",
            "clientSecret",
            "authorization",
            "Proxy-Authorization",
            "cookie",
            "Set-Cookie",
            "private_key",
            "access_key",
            "aws_secret_access_key",
            "refresh-token",
            "db.password",
            "Ocp-Apim-Subscription-Key",
            "DD-APPLICATION-KEY",
        ] {
            assert!(Scrubber::is_secret_name(secret), "{secret} is secret");
        }
        for ordinary in [
            "signature_url",
            "signature",
            "public_key",
            "key_id",
            "key",
            "monkey",
            "keyboard",
            "token_type",
            "token_url",
            "password_policy",
            "secret_name",
            "passing",
            "tokenizer",
            "",
        ] {
            assert!(
                !Scrubber::is_secret_name(ordinary),
                "{ordinary} is ordinary"
            );
        }
    }

    #[test]
    fn ordinary_fields_stay_visible_and_secret_ones_do_not() {
        let s = Scrubber::default();
        let mut v = serde_json::json!({
            "signature_url": "https://h/app.minisig",
            "public_key": "RWQfpub",
            "key_id": "k1",
            "monkey": "banana",
            "client_secret": "cs-value",
            "x-api-key": "xk-value",
        });
        s.scrub_value(&mut v);
        assert_eq!(v["signature_url"], "https://h/app.minisig");
        assert_eq!(v["public_key"], "RWQfpub");
        assert_eq!(v["key_id"], "k1");
        assert_eq!(v["monkey"], "banana");
        assert_eq!(v["client_secret"], "***");
        assert_eq!(v["x-api-key"], "***");
        let line = "verified signature with key: RWQfAbCd1234 (key_id=k1, monkey=banana)";
        assert_eq!(s.scrub_str(line), line);
        // An environment variable in a command line is secret with the word anywhere.
        assert_eq!(
            s.scrub_str(
                "PGPASSWORD=pg1 DBPASS=db2 MYSQL_PWD=m3 GITHUB_TOKEN=g4 APIKEYS=k5 PORT=80 psql"
            ),
            "PGPASSWORD=*** DBPASS=*** MYSQL_PWD=*** GITHUB_TOKEN=*** APIKEYS=*** PORT=80 psql"
        );
        let body = r#"{"public_key":"RWQf","signature":"untrusted comment","private_key":"pk-1"}"#;
        assert_eq!(
            s.scrub_str(body),
            r#"{"public_key":"RWQf","signature":"untrusted comment","private_key":"***"}"#
        );
        // In a URL a signature or key is a credential by itself.
        assert_eq!(
            s.scrub_str("https://h/f?key=AIza1&sig=s1&keyboard=1"),
            "https://h/f?key=***&sig=***&keyboard=1"
        );
    }

    #[test]
    fn an_excerpt_is_scrubbed_before_it_is_cut() {
        let secret = "CorrectHorseBatteryStaple".repeat(4);
        let body = format!(r#"{{"status":"starting","password":"{secret}"}}"#);
        for max in 1..body.len() + 4 {
            let out = excerpt(body.as_bytes(), max);
            assert!(out.len() <= max, "{max}: {out}");
            assert!(!out.contains("CorrectHorse"), "{max}: {out}");
            // Never inside the mask: all of it or none of it.
            assert!(
                !out.contains(r#"":"*…"#) && !out.contains(r#"":"**…"#),
                "{out}"
            );
        }
        assert_eq!(
            excerpt(body.as_bytes(), 200),
            r#"{"status":"starting","password":"***"}"#
        );
        // A body that ends inside the value (cut by the HTTP read limit) is masked too.
        let cut = &body[..body.len() - 30];
        assert!(!excerpt(cut.as_bytes(), 200).contains("CorrectHorse"));
    }

    #[test]
    fn an_excerpt_never_keeps_part_of_a_known_value() {
        let s = Scrubber::default();
        s.add_secret("kn0wn-v4lue-for-the-excerpt-test");
        let text = format!("{}kn0wn-v4lue-for-the-excerpt-test tail", "x".repeat(74));
        let out = excerpt(text.as_bytes(), 80);
        assert!(!out.contains("kn0wn"), "{out}");
        assert!(out.ends_with("***…"), "{out}");
    }

    #[test]
    fn an_excerpt_shows_controls_and_cuts_on_whole_characters() {
        assert_eq!(
            excerpt(b"  a\x1b[31mb\r\nc\x07  ", 100),
            r"a\x1b[31mb\r\nc\x07"
        );
        assert_eq!(excerpt("\u{202e}txt".as_bytes(), 100), r"\u{202e}txt");
        // The escape is one unit: `\x1` never shows.
        assert_eq!(excerpt(b"ab\x1bcdef", 7), "ab…");
        // A cut in a multibyte character drops all of it.
        assert_eq!(excerpt("ééééé".as_bytes(), 6), "é…");
        assert_eq!(excerpt(b"\xff\xfeok", 100), "\u{fffd}\u{fffd}ok");
        assert_eq!(excerpt(b"short", 5), "short");
        assert_eq!(excerpt(b"", 5), "");
    }
}
