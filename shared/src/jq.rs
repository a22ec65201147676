//! jq expectations (`--expect '.status == "ok"'`), in the syntax operators already know,
//! compiled once at start (an invalid expression is a usage error with a caret under the
//! mistake) and run against a response body or any JSON value. Every evaluation runs in a
//! forked child on a large stack (see `contained`): a runaway expression cannot outlive the
//! deadline or a signal, and one that overflows any stack is an error, never a crash.

mod contained;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::scrub::excerpt;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, compile, data, unwrap_valr};
use jaq_json::Val;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled jq expression.
pub struct JqExpr {
    text: String,
    flag: String,
    filter: Arc<Filter>,
}

impl std::fmt::Debug for JqExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JqExpr").field(&self.text).finish()
    }
}

/// A JSON document ready for jq.
#[derive(Debug, Clone)]
pub struct JqInput(Val);

impl JqInput {
    /// A value from a record (verify asserts on earlier steps' results).
    #[must_use]
    pub fn from_value(value: &serde_json::Value) -> Self {
        JqInput(serde::Deserialize::deserialize(value).expect("a JSON value is a jq value"))
    }
}

/// What an expression yielded: at most [`MAX_OUTPUTS`] values.
#[derive(Debug, Clone)]
pub struct Outputs(Vec<Val>);

/// How many values of an expression are looked at.
pub const MAX_OUTPUTS: usize = 64;

impl Outputs {
    /// An expectation holds when it yields at least one value and every value is `true`.
    #[must_use]
    pub fn holds(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|v| matches!(v, Val::Bool(true)))
    }

    /// The first value as text: a string as it is, anything else as JSON; `None` for null or
    /// no value.
    #[must_use]
    pub fn first_text(&self) -> Option<String> {
        match self.0.first()? {
            Val::Null => None,
            Val::TStr(bytes) | Val::BStr(bytes) => {
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
            other => Some(other.to_string()),
        }
    }

    /// The values as compact JSON, comma-separated, cut to about `max` bytes with `…` (what
    /// a false expectation produced, for its message).
    #[must_use]
    pub fn shown(&self, max: usize) -> String {
        if self.0.is_empty() {
            return "no value".to_string();
        }
        let mut out = Bounded::new(max);
        for (i, value) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            // Formatting stops as soon as the bound is reached, however big the value.
            if write!(out, "{sep}{value}").is_err() {
                break;
            }
        }
        out.finish()
    }
}

/// A `fmt::Write` that keeps `max` bytes (on a char boundary) and then refuses more.
struct Bounded {
    text: String,
    max: usize,
    cut: bool,
}

impl Bounded {
    fn new(max: usize) -> Self {
        Bounded {
            text: String::new(),
            max,
            cut: false,
        }
    }

    fn finish(mut self) -> String {
        if self.cut {
            self.text.push('…');
        }
        self.text
    }
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.max.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        self.cut = true;
        Err(std::fmt::Error)
    }
}

/// How deep a body may nest before it is refused: the parser recurses, and a hostile server
/// must not be able to overflow our stack.
pub const MAX_DEPTH: usize = 256;

/// How long an evaluation may take even at or past the deadline: a few tens of milliseconds
/// of overrun, so that an answer that arrived just in time is judged, not dropped.
const MIN_EVALUATION: Duration = Duration::from_millis(25);

/// How long an evaluation with no deadline of its own may take.
const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);

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
    /// Compile `text`, given with `flag`; an invalid expression is a usage error that shows
    /// where the mistake is and what was expected there. jq's `.5` number literals, which
    /// jaq reads as a path, are read as `0.5` when that is what makes the expression valid.
    pub fn compile(text: &str, flag: &str) -> Result<Self> {
        let filter = match compile_code(text, flag) {
            Ok(filter) => filter,
            Err(first) => match with_leading_zeros(text) {
                Some(rewritten) => compile_code(&rewritten, flag).map_err(|_| first)?,
                None => return Err(first),
            },
        };
        Ok(JqExpr {
            text: text.to_string(),
            flag: flag.to_string(),
            filter: Arc::new(filter),
        })
    }

    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The flag it was given with (`--expect`).
    #[must_use]
    pub fn flag(&self) -> &str {
        &self.flag
    }

    /// Every value the expression yields, or the first error it raised, with no deadline:
    /// for expressions from a trusted place; see [`JqExpr::eval_until`].
    pub fn run(&self, input: &JqInput) -> Result<Vec<Val>, String> {
        self.unbounded(input).map(|o| o.0)
    }

    /// An expectation holds when it yields at least one value and every value is `true`.
    pub fn holds(&self, input: &JqInput) -> Result<bool, String> {
        self.unbounded(input).map(|o| o.holds())
    }

    /// The first value as text (see [`Outputs::first_text`]).
    pub fn first_text(&self, input: &JqInput) -> Result<Option<String>, String> {
        self.unbounded(input).map(|o| o.first_text())
    }

    fn unbounded(&self, input: &JqInput) -> Result<Outputs, String> {
        let until = Instant::now() + NO_DEADLINE;
        match self.eval_until(input, until, &Cancel::default()) {
            Ok(outputs) => outputs,
            Err(e) => Err(e.message),
        }
    }

    /// Evaluate (in a child, see `contained`) until `until`: the outputs, or the jq error
    /// (inner `Err`); an outer `Err` of kind `timeout` naming the expression when it has not
    /// finished by then (the child is killed), or `interrupted` on a signal.
    pub fn eval_until(
        &self,
        input: &JqInput,
        until: Instant,
        cancel: &Cancel,
    ) -> Result<Result<Outputs, String>> {
        // An answer that came in as the deadline struck is still judged, briefly.
        let until = until.max(Instant::now() + MIN_EVALUATION);
        match contained::evaluate_until(&self.filter, &self.text, &input.0, until, cancel)? {
            Some(outputs) => Ok(outputs.map(Outputs)),
            None if Instant::now() < until => Err(contained::no_answer(&self.flag, &self.text)),
            None => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} '{}' was still being evaluated at the deadline (--timeout): the expression runs away",
                    self.flag, self.text
                ),
            )),
        }
    }

    /// [`JqExpr::holds`] within a deadline and signals (see [`JqExpr::eval_until`]).
    pub fn holds_until(
        &self,
        input: &JqInput,
        until: Instant,
        cancel: &Cancel,
    ) -> Result<Result<bool, String>> {
        Ok(self.eval_until(input, until, cancel)?.map(|o| o.holds()))
    }
}

/// ugw's definitions (jq 1.7/1.8 filters jaq lacks or defines otherwise; see defs.jq).
const UGW_DEFS: &str = include_str!("jq/defs.jq");

/// Every definition an expression can use: jaq's, ugw's (which replace jaq's of the same
/// name), and `builtins`, the list of all of them and of the native filters as jq gives it.
fn definitions(natives: &[(&'static str, usize)]) -> Vec<load::parse::Def<&'static str>> {
    static BUILTINS: OnceLock<String> = OnceLock::new();
    let ours = || load::parse(UGW_DEFS, |p| p.defs()).expect("ugw's jq definitions parse");
    let mut defs: Vec<_> = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(ours())
        .collect();
    let builtins = BUILTINS.get_or_init(|| {
        let mut names: Vec<String> = defs
            .iter()
            .map(|d| (d.name, d.args.len()))
            .chain(natives.iter().copied())
            .filter(|(name, _)| !name.starts_with('_') && !name.starts_with('@'))
            .map(|(name, arity)| format!("{name}/{arity}"))
            .chain(["builtins/0".to_string()])
            .collect();
        names.sort();
        names.dedup();
        let list = serde_json::to_string(&names).expect("names are JSON strings");
        format!("def builtins: {list};")
    });
    defs.extend(load::parse(builtins, |p| p.defs()).expect("the builtins list parses"));
    defs
}

/// Compile `code`: the filter, or the usage error naming `code` and the mistake in it.
fn compile_code(code: &str, flag: &str) -> Result<Filter> {
    let funs: Vec<_> = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .collect();
    let natives: Vec<(&'static str, usize)> = funs
        .iter()
        .map(|(name, args, _)| (*name, args.len()))
        .collect();
    let arena = Arena::default();
    let invalid = |(why, at): (String, Option<usize>)| {
        let mut message = format!("{flag} '{code}' is not a valid jq expression: {why}");
        if let Some(at) = at {
            // The line of a multi-line expression the mistake is on, and a caret under it.
            let start = code[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = code[at..].find('\n').map_or(code.len(), |i| at + i);
            let column = code[start..at].chars().count();
            let line = &code[start..end];
            let _ = write!(message, "\n    {line}\n    {}^", " ".repeat(column));
        }
        Error::usage(message)
    };
    let file = File { code, path: () };
    let modules = Loader::new(definitions(&natives))
        .load(&arena, file)
        .map_err(|errors| invalid(load_error(code, &errors)))?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| invalid(compile_error(code, &errors)))
}

/// `text` with a `0` before each number literal that starts with a dot (`.5`, `1 + .25`),
/// outside strings and comments; `None` if there is none. A dot after a name, a closing
/// bracket, a digit or another dot is a path or part of a number, and is left alone.
fn with_leading_zeros(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 4);
    let mut changed = false;
    let mut i = 0;
    // Depth of string interpolations: inside `"…\(` code, a `)` at depth 0 returns to the string.
    let mut in_string = false;
    let mut interpolations: Vec<usize> = Vec::new();
    let mut parens = 0usize;
    let mut previous = ' ';
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            match c {
                '\\' if chars.get(i + 1) == Some(&'(') => {
                    out.push('(');
                    i += 1;
                    in_string = false;
                    interpolations.push(parens);
                    parens = 0;
                    previous = '(';
                }
                '\\' => {
                    if let Some(&next) = chars.get(i + 1) {
                        out.push(next);
                        i += 1;
                    }
                }
                '"' => {
                    in_string = false;
                    previous = '"';
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            '"' => in_string = true,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
                continue;
            }
            '(' => parens += 1,
            ')' if parens == 0 && !interpolations.is_empty() => {
                parens = interpolations.pop().unwrap_or(0);
                in_string = true;
                out.push(c);
                i += 1;
                continue;
            }
            ')' => parens = parens.saturating_sub(1),
            '.' if chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !(previous.is_alphanumeric() || "_)]}\".$".contains(previous)) =>
            {
                out.push('0');
                changed = true;
            }
            _ => {}
        }
        out.push(c);
        if !c.is_whitespace() {
            previous = c;
        }
        i += 1;
    }
    changed.then_some(out)
}

fn evaluate(filter: &Filter, text: &str, input: Val) -> Result<Outputs, String> {
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    filter
        .id
        .run((ctx, input))
        .map(unwrap_valr)
        .take(MAX_OUTPUTS)
        .map(|r| r.map_err(|e| format!("jq error in '{text}': {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Outputs)
}

/// Where `part` (a slice of `text`) starts in it, if it is one.
fn offset_in(text: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    (start <= text.len()).then_some(start)
}

/// The last word before `at`, for "expected a term after '=='".
fn word_before(text: &str, at: usize) -> Option<&str> {
    let word = text[..at].trim_end().rsplit(char::is_whitespace).next()?;
    (!word.is_empty()).then(|| word.get(word.len().saturating_sub(20)..).unwrap_or(word))
}

type Why = (String, Option<usize>);

/// The first loading (lexing, parsing) error in words, and where it is.
fn load_error(text: &str, errors: &load::Errors<&str, ()>) -> Why {
    let Some((_, error)) = errors.first() else {
        return ("unknown error".into(), None);
    };
    match error {
        load::Error::Lex(lex) => lex
            .first()
            .map_or(("unknown error".into(), None), |(e, at)| {
                lex_error(text, e, at)
            }),
        load::Error::Parse(parse) => parse
            .first()
            .map_or(("unknown error".into(), None), |(expected, found)| {
                parse_error(text, expected, found)
            }),
        load::Error::Io(io) => (
            io.first().map_or_else(
                || "cannot load a module".into(),
                |(m, e)| format!("module {m}: {e}"),
            ),
            None,
        ),
    }
}

fn lex_error(text: &str, expected: &load::lex::Expect<&str>, at: &str) -> Why {
    use load::lex::Expect;
    let why = match expected {
        Expect::Delim(open) => {
            let close = match *open {
                "(" => ")",
                "[" => "]",
                "{" => "}",
                "\"" => "\"",
                other => other,
            };
            // The slice is the opening delimiter: the caret points at what was left open.
            return (
                format!("'{open}' is never closed: expected '{close}'"),
                offset_in(text, open),
            );
        }
        Expect::Digit => "expected a digit".to_string(),
        Expect::Ident => "expected a name".to_string(),
        Expect::Escape => "expected a string escape (\\n, \\\", \\\\ …)".to_string(),
        Expect::Unicode => "expected 4 hexadecimal digits after \\u".to_string(),
        _ => format!(
            "unexpected character '{}'",
            at.chars()
                .next()
                .map_or_else(String::new, |c| c.to_string())
        ),
    };
    (why, offset_in(text, at))
}

fn parse_error(text: &str, expected: &load::parse::Expect<&str>, found: &str) -> Why {
    use load::parse::Expect;
    let what = match expected {
        Expect::Just(token) => format!("'{token}'"),
        Expect::Term => "a term (a value, a path such as .a, or a function call)".into(),
        Expect::Var => "a variable".into(),
        Expect::Pattern => "a pattern".into(),
        Expect::Key => "a key".into(),
        Expect::Ident => "a name".into(),
        Expect::Arg => "an argument".into(),
        Expect::Str => "a string".into(),
        Expect::Nothing => "the end of the expression".into(),
        other => other.as_str().to_string(),
    };
    let at = offset_in(text, found);
    let why = match (found.is_empty(), at.and_then(|at| word_before(text, at))) {
        (false, _) => format!("unexpected '{found}': expected {what}"),
        (true, Some(word)) => format!("expected {what} after '{word}'"),
        (true, None) => format!("expected {what}"),
    };
    (why, at)
}

/// The first compile error (an unknown function or variable) in words, and where it is.
fn compile_error(text: &str, errors: &compile::Errors<&str, ()>) -> Why {
    let Some((name, undefined)) = errors.first().and_then(|(_, e)| e.first()) else {
        return ("unknown error".into(), None);
    };
    let why = match undefined {
        compile::Undefined::Filter(arity) => {
            format!("no function {name}/{arity} (a name or a number of arguments is wrong)")
        }
        other => format!("no {} {name}", other.as_str()),
    };
    (why, offset_in(text, name))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_hold_only_for_true() {
        let input = parse_json(br#"{"status":"ok","version":"v1.2.0","n":[1,2]}"#).unwrap();
        let holds = |e: &str| {
            JqExpr::compile(e, "--expect")
                .unwrap()
                .holds(&input)
                .unwrap()
        };
        assert!(holds(r#".status == "ok""#));
        assert!(!holds(r#".status == "bad""#));
        assert!(!holds(".status"));
        assert!(holds(".n | length == 2"));
        let version = JqExpr::compile(".version", "--version-path").unwrap();
        assert_eq!(
            version.first_text(&input).unwrap().as_deref(),
            Some("v1.2.0")
        );
    }

    #[test]
    fn invalid_bodies_are_reported() {
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
        let err = JqExpr::compile(".a.b", "--expect")
            .unwrap()
            .holds(&input)
            .unwrap_err();
        assert!(err.contains("jq error in '.a.b'"), "{err}");
    }

    fn compile_error(text: &str) -> String {
        let err = JqExpr::compile(text, "--expect").unwrap_err();
        assert_eq!(err.exit, 2);
        assert!(
            err.message
                .starts_with(&format!("--expect '{text}' is not a valid jq expression: ")),
            "{}",
            err.message
        );
        assert!(!err.message.contains("Lex(") && !err.message.contains("File {"));
        err.message
    }

    #[test]
    fn syntax_errors_show_the_expression_with_a_caret_and_what_was_expected() {
        assert_eq!(
            compile_error(".a =="),
            "--expect '.a ==' is not a valid jq expression: expected a term (a value, a path \
             such as .a, or a function call) after '=='\n    .a ==\n         ^"
        );
        assert_eq!(
            compile_error(".a | (.b"),
            "--expect '.a | (.b' is not a valid jq expression: '(' is never closed: expected ')'\
             \n    .a | (.b\n         ^"
        );
        let message = compile_error("if . then 1 fi");
        assert!(message.contains("unexpected 'fi'"), "{message}");
        assert!(
            message.ends_with("\n    if . then 1 fi\n                ^"),
            "{message}"
        );
        let message = compile_error(".a | nosuchfn(1)");
        assert!(message.contains("no function nosuchfn/1"), "{message}");
        assert!(
            message.ends_with("\n    .a | nosuchfn(1)\n         ^"),
            "{message}"
        );
        let message = compile_error("$x");
        assert!(message.contains("no variable $x"), "{message}");
        assert!(compile_error("").contains("expected a term"));
        let message = compile_error(".a\n| .b ==");
        assert!(
            message.ends_with("\n    | .b ==\n           ^"),
            "{message}"
        );
    }

    #[test]
    fn a_false_expectation_shows_what_it_produced_bounded() {
        let input = parse_json(br#"{"status":"starting","n":[1,2,3]}"#).unwrap();
        let cancel = Cancel::default();
        let until = Instant::now() + Duration::from_secs(5);
        let outputs = |e: &str| {
            JqExpr::compile(e, "--expect")
                .unwrap()
                .eval_until(&input, until, &cancel)
                .unwrap()
                .unwrap()
        };
        let status = outputs(".status");
        assert!(!status.holds());
        assert_eq!(status.shown(100), r#""starting""#);
        assert_eq!(outputs(".n[]").shown(100), "1, 2, 3");
        assert_eq!(outputs("empty").shown(100), "no value");
        assert_eq!(outputs(".").shown(10), r#"{"status":…"#);
        // A huge value is cut while it is formatted, not after.
        let big = outputs("[range(1000000)]").shown(20);
        assert_eq!(big, "[0,1,2,3,4,5,6,7,8,9…");
    }

    #[test]
    fn values_from_records_are_inputs_too() {
        let value = serde_json::json!({"steps": [{"tool": "ugw-fetch", "result": {"bytes": 12}}]});
        let input = JqInput::from_value(&value);
        let expr = JqExpr::compile(".steps[0].result.bytes > 10", "--assert").unwrap();
        assert!(expr.holds(&input).unwrap());
        let tool = JqExpr::compile(".steps[0].tool", "--assert").unwrap();
        assert_eq!(
            tool.first_text(&input).unwrap().as_deref(),
            Some("ugw-fetch")
        );
    }

    #[test]
    fn a_runaway_child_is_killed_when_its_deadline_passes() {
        let forked = || {
            contained::FORKED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        };
        let before = forked().len();
        let expr = JqExpr::compile("last(range(1e12))", "--expect").unwrap();
        let until = Instant::now() + Duration::from_millis(200);
        let err = expr
            .holds_until(&parse_json(b"{}").unwrap(), until, &Cancel::default())
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout);
        // Its child and those of the tests running beside it: none may be left running.
        let children = forked()[before..].to_vec();
        assert!(!children.is_empty());
        let gone = |pid: &libc::pid_t| !std::path::Path::new(&format!("/proc/{pid}")).exists();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !children.iter().all(gone) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<_> = children.iter().filter(|pid| !gone(pid)).collect();
        assert!(left.is_empty(), "still running: {left:?}");
    }

    #[test]
    fn a_runaway_expression_loses_to_the_deadline() {
        let input = parse_json(b"{}").unwrap();
        for text in ["[range(1e9)] | length > 0", "last(range(1e12))"] {
            let expr = JqExpr::compile(text, "--expect").unwrap();
            let start = Instant::now();
            let until = start + Duration::from_millis(300);
            let err = expr
                .holds_until(&input, until, &Cancel::default())
                .unwrap_err();
            assert!(start.elapsed() >= Duration::from_millis(300));
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
            assert_eq!(err.kind, ErrorKind::Timeout);
            assert!(
                err.message.contains(&format!("--expect '{text}'")),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn a_signal_wins_over_a_runaway_expression() {
        let input = parse_json(b"{}").unwrap();
        let expr = JqExpr::compile("last(range(1e12))", "--expect").unwrap();
        let cancel = Cancel::default();
        let trip = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            trip.trip(libc::SIGTERM);
        });
        let start = Instant::now();
        let err = expr
            .holds_until(&input, start + Duration::from_secs(30), &cancel)
            .unwrap_err();
        assert_eq!(err.exit, 143);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn dot_number_literals_are_numbers_outside_strings_and_paths() {
        assert_eq!(with_leading_zeros(".5 + 1").as_deref(), Some("0.5 + 1"));
        assert_eq!(with_leading_zeros(". * .25").as_deref(), Some(". * 0.25"));
        assert_eq!(
            with_leading_zeros("[.[0], -.5]").as_deref(),
            Some("[.[0], -0.5]")
        );
        assert_eq!(
            with_leading_zeros(r#""a .5" | .5"#).as_deref(),
            Some(r#""a .5" | 0.5"#)
        );
        assert_eq!(
            with_leading_zeros(r#""\(.5) .5" + .5 # .5"#).as_deref(),
            Some(r#""\(0.5) .5" + 0.5 # .5"#)
        );
        for unchanged in [".a.b", "1.5", ".[1].a", "$x", ".a | ..", "\".5\""] {
            assert_eq!(with_leading_zeros(unchanged), None, "{unchanged}");
        }
        // A mistake elsewhere is reported in the expression as written.
        let err = JqExpr::compile(".5 +", "--expect").unwrap_err();
        assert!(err.message.contains("'.5 +'"), "{}", err.message);
    }

    #[test]
    fn no_expression_can_crash_the_process() {
        let input = parse_json(b"{}").unwrap();
        let run = |text: &str| JqExpr::compile(text, "--expect").unwrap().run(&input);
        // Deep, but within the evaluation's stack: it answers.
        let ten_thousand = run("reduce range(10000) as $_ ([]; [.]) | tojson").unwrap();
        assert_eq!(ten_thousand[0].to_string().len(), 20_004);
        assert_eq!(
            run("reduce range(10000) as $_ ([]; [.]) | tojson | fromjson | tojson | length")
                .unwrap()[0]
                .to_string(),
            "20002"
        );
        for (text, why) in [
            (
                "reduce range(300000) as $_ ([]; [.]) | tojson | length",
                "stack",
            ),
            ("\"[\" * 1000000 | fromjson | length", "stack"),
            ("def f: [f]; f", "stack"),
            ("def f: 1 + f; f", "stack"),
            (
                "reduce range(1000) as $_ ([]; [.])",
                "nested deeper than 256",
            ),
        ] {
            let err = run(text).unwrap_err();
            assert!(err.starts_with(&format!("jq error in '{text}': ")), "{err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_quick_expression_answers_through_the_worker() {
        let input = parse_json(br#"{"ok":true}"#).unwrap();
        let expr = JqExpr::compile(".ok", "--expect").unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        assert!(
            expr.holds_until(&input, until, &Cancel::default())
                .unwrap()
                .unwrap()
        );
        // At the deadline itself a quick expression still gets its answer.
        let now = Instant::now();
        assert!(
            expr.holds_until(&input, now, &Cancel::default())
                .unwrap()
                .unwrap()
        );
        let bad = JqExpr::compile(".ok.x", "--expect").unwrap();
        assert!(
            bad.holds_until(&input, until, &Cancel::default())
                .unwrap()
                .is_err()
        );
    }
}
