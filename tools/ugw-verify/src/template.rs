//! `${env:NAME}` and `${capture:NAME}` in a check's URL, headers and body: the environment is
//! read once when the checks are loaded (a header's value from it is a secret, never shown);
//! a capture is filled in when the check runs, from an earlier check's answer.

use crate::spec::Env;
use std::collections::HashMap;
use ugw_shared::{Error, Result};

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Capture(String),
}

#[derive(Debug, Clone)]
pub struct Template(Vec<Part>);

impl Template {
    pub fn literal(text: &str) -> Self {
        Template(vec![Part::Text(text.to_string())])
    }

    /// `text` with its `${env:…}` filled in now and its `${capture:…}` kept for later; an
    /// environment value in a `secret` place (a header) goes to the scrubber first.
    pub fn parse(text: &str, path: &str, env: &Env, secret: bool) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let (before, after) = rest.split_at(start);
            let end = after
                .find('}')
                .ok_or_else(|| Error::usage(format!("{path}: '${{' is never closed with '}}'")))?;
            let inner = &after[2..end];
            push_text(&mut parts, before);
            match inner.split_once(':') {
                Some(("env", name)) => {
                    let value = std::env::var(name).map_err(|_| {
                        Error::usage(format!(
                            "{path}: ${{env:{name}}}: environment variable {name} is not set (or not UTF-8)"
                        ))
                    })?;
                    if secret {
                        env.scrubber.add_secret(&value);
                    }
                    push_text(&mut parts, &value);
                }
                Some(("capture", name)) if !name.is_empty() => {
                    parts.push(Part::Capture(name.to_string()));
                }
                _ => {
                    return Err(Error::usage(format!(
                        "{path}: '${{{inner}}}' is neither ${{env:NAME}} nor ${{capture:NAME}}"
                    )));
                }
            }
            rest = &after[end + 1..];
        }
        push_text(&mut parts, rest);
        Ok(Template(parts))
    }

    /// The names of the captures it reads.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Part::Capture(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The text with the captured values in; `Err` names a capture that was not made (the
    /// check that makes it failed).
    pub fn render(
        &self,
        captured: &HashMap<String, String>,
    ) -> std::result::Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Capture(name) => out.push_str(
                    captured
                        .get(name)
                        .ok_or_else(|| format!("no value was captured for '{name}'"))?,
                ),
            }
        }
        Ok(out)
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ugw_shared::scrub::Scrubber;

    #[test]
    fn env_is_read_at_once_and_captures_later() {
        let scrubber = Scrubber::default();
        let env = Env {
            scrubber: &scrubber,
        };
        // SAFETY-free: PATH is always set in a test run.
        let path = std::env::var("PATH").unwrap();
        let t = Template::parse("a ${env:PATH} b ${capture:id}/x", "$.h", &env, true).unwrap();
        assert_eq!(t.captures().collect::<Vec<_>>(), ["id"]);
        let captured = HashMap::from([("id".to_string(), "42".to_string())]);
        assert_eq!(t.render(&captured).unwrap(), format!("a {path} b 42/x"));
        assert!(t.render(&HashMap::new()).unwrap_err().contains("'id'"));
        assert_eq!(
            scrubber.scrub_str(&path),
            "***",
            "a header value from the environment is secret"
        );
        for bad in ["${env:UGW_SURELY_UNSET_VARIABLE}", "${oops}", "${env:PATH"] {
            let err = Template::parse(bad, "$.h", &env, false).unwrap_err();
            assert!(err.message.starts_with("$.h: "), "{}", err.message);
        }
    }
}
