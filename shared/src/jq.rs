//! jq expectations (`--expect '.status == "ok"'`), in the syntax operators already know,
//! compiled once at start (an invalid expression is a usage error before any attempt) and
//! run against each response body.

use crate::error::{Error, Result};
use crate::scrub::excerpt;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

/// A compiled jq expression.
pub struct JqExpr {
    text: String,
    filter: jaq_core::Filter<data::JustLut<Val>>,
}

impl std::fmt::Debug for JqExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JqExpr").field(&self.text).finish()
    }
}

/// A JSON document ready for jq.
#[derive(Debug, Clone)]
pub struct JqInput(Val);

/// How deep a body may nest before it is refused: the parser recurses, and a hostile server
/// must not be able to overflow our stack.
pub const MAX_DEPTH: usize = 256;

/// Parse a body as JSON for jq; a body that is not JSON is an `Err` with an excerpt.
pub fn parse_json(bytes: &[u8]) -> Result<JqInput, String> {
    if nesting_depth(bytes) > MAX_DEPTH {
        return Err(format!(
            "the body is JSON nested deeper than {MAX_DEPTH} levels; not parsed"
        ));
    }
    jaq_json::read::parse_single(bytes)
        .map(JqInput)
        .map_err(|_| format!("the body is not JSON: '{}'", excerpt(bytes, 80)))
}

impl JqExpr {
    /// Compile `text`, given with `flag`; an invalid expression is a usage error.
    pub fn compile(text: &str, flag: &str) -> Result<Self> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let invalid = |why: String| {
            Error::usage(format!(
                "{flag} '{text}' is not a valid jq expression: {why}"
            ))
        };
        let modules = Loader::new(defs)
            .load(
                &arena,
                File {
                    code: text,
                    path: (),
                },
            )
            .map_err(|errors| invalid(first_error(&errors)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| invalid(first_error(&errors)))?;
        Ok(JqExpr {
            text: text.to_string(),
            filter,
        })
    }

    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every value the expression yields, or the first error it raised.
    pub fn run(&self, input: &JqInput) -> Result<Vec<Val>, String> {
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        self.filter
            .id
            .run((ctx, input.0.clone()))
            .map(unwrap_valr)
            .take(64)
            .map(|r| r.map_err(|e| format!("jq error in '{}': {e}", self.text)))
            .collect()
    }

    /// An expectation holds when it yields at least one value and every value is `true`.
    pub fn holds(&self, input: &JqInput) -> Result<bool, String> {
        let values = self.run(input)?;
        Ok(!values.is_empty() && values.iter().all(|v| matches!(v, Val::Bool(true))))
    }

    /// The first value as text: a string as it is, anything else as JSON; `None` for null or
    /// no value.
    pub fn first_text(&self, input: &JqInput) -> Result<Option<String>, String> {
        Ok(match self.run(input)?.into_iter().next() {
            None | Some(Val::Null) => None,
            Some(Val::TStr(bytes) | Val::BStr(bytes)) => {
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            Some(other) => Some(other.to_string()),
        })
    }
}

/// The deepest nesting of arrays and objects, counted outside strings (a cheap scan that
/// stops counting once past the limit).
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_DEPTH {
                    return deepest;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn first_error<T: std::fmt::Debug>(errors: &[T]) -> String {
    let text = errors
        .first()
        .map_or_else(|| "unknown error".to_string(), |e| format!("{e:?}"));
    let text: String = text.chars().take(200).collect();
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_hold_only_for_true() {
        let input = parse_json(br#"{"status":"ok","version":"v1.2.0","n":[1,2]}"#).unwrap();
        assert!(
            JqExpr::compile(r#".status == "ok""#, "--expect")
                .unwrap()
                .holds(&input)
                .unwrap()
        );
        assert!(
            !JqExpr::compile(r#".status == "bad""#, "--expect")
                .unwrap()
                .holds(&input)
                .unwrap()
        );
        assert!(
            !JqExpr::compile(".status", "--expect")
                .unwrap()
                .holds(&input)
                .unwrap()
        );
        assert!(
            JqExpr::compile(".n | length == 2", "--expect")
                .unwrap()
                .holds(&input)
                .unwrap()
        );
        let version = JqExpr::compile(".version", "--version-path").unwrap();
        assert_eq!(
            version.first_text(&input).unwrap().as_deref(),
            Some("v1.2.0")
        );
    }

    #[test]
    fn invalid_expressions_and_bodies_are_reported() {
        let err = JqExpr::compile(".status ==", "--expect").unwrap_err();
        assert_eq!(err.exit, 2);
        assert!(
            err.message.contains("--expect '.status =='"),
            "{}",
            err.message
        );
        assert!(JqExpr::compile("nosuchfn(1)", "--expect").is_err());
        assert!(parse_json(b"<html>").unwrap_err().contains("not JSON"));
        let deep = "[".repeat(200_000);
        assert!(
            parse_json(deep.as_bytes())
                .unwrap_err()
                .contains("nested deeper")
        );
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_json(fine.as_bytes()).is_ok());
        assert!(parse_json(br#"{"a":"[[[[[["}"#).is_ok());
        let input = parse_json(b"\"text\"").unwrap();
        assert!(
            JqExpr::compile(".a.b", "--expect")
                .unwrap()
                .holds(&input)
                .is_err()
        );
    }
}
