//! The SQL splitter of ugw-migrate, both dialects, with the properties the runner relies on:
//! - the tokens tile the input: in order, each its own slice of it, only whitespace between;
//! - split then joined gives the input back: the statements are slices of the input at token
//!   boundaries, in order, and what lies between them is only `;`, comments and whitespace
//!   (so no boundary falls inside a string, quoted identifier, comment or dollar-quoted
//!   body: those are single tokens);
//! - a statement read alone lexes as it did in the file (it starts at the top level);
//! - the statements joined with `;` split again into the same statements.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ugw_migrate::fuzzing::{Engine, Kind, Statement, Token, statements, tokenize};

type Spanned = (Token, std::ops::Range<usize>);

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    for dialect in [Engine::Sqlite, Engine::Postgres] {
        let tokens = tokenize(sql, dialect);
        tokens_tile(sql, &tokens);
        let split = statements(sql, dialect);
        statements_are_the_input(sql, &tokens, &split, dialect);
        rejoined_splits_the_same(&split, dialect);
    }
});

fn tokens_tile(sql: &str, tokens: &[Spanned]) {
    let mut at = 0;
    for (token, range) in tokens {
        assert!(range.start >= at && range.end > range.start, "token {token:?} at {range:?}");
        assert!(sql[at..range.start].bytes().all(|b| b.is_ascii_whitespace()));
        assert_eq!(token.text, sql[range.clone()]);
        assert_eq!(token.line, 1 + sql[..range.start].matches('\n').count());
        at = range.end;
    }
    assert!(sql[at..].bytes().all(|b| b.is_ascii_whitespace()));
}

fn statements_are_the_input(sql: &str, tokens: &[Spanned], split: &[Statement], dialect: Engine) {
    let mut next = 0;
    for statement in split {
        // The first token at or after `next` where this statement's text starts and ends on
        // token boundaries; every token skipped is a separator or a comment.
        let mut found = None;
        for first in next..tokens.len() {
            let start = tokens[first].1.start;
            if sql[start..].starts_with(&statement.text) {
                let end = start + statement.text.len();
                if let Some(last) = tokens[first..].iter().position(|(_, r)| r.end == end) {
                    found = Some((first, first + last));
                    break;
                }
            }
            let (skipped, _) = &tokens[first];
            assert!(
                skipped.kind == Kind::Comment || skipped.is_punct(';'),
                "{dialect:?}: {:?} is in no statement (statements {:?})",
                skipped.text,
                split.iter().map(|s| &s.text).collect::<Vec<_>>()
            );
        }
        let Some((first, last)) = found else {
            panic!("{dialect:?}: statement {:?} is not a run of the input's tokens", statement.text);
        };
        let inside: Vec<(Kind, &str)> =
            tokens[first..=last].iter().map(|(t, _)| (t.kind, t.text.as_str())).collect();
        let alone: Vec<(Kind, String)> =
            tokenize(&statement.text, dialect).into_iter().map(|(t, _)| (t.kind, t.text)).collect();
        let alone: Vec<(Kind, &str)> = alone.iter().map(|(k, t)| (*k, t.as_str())).collect();
        assert_eq!(inside, alone, "{dialect:?}: statement {:?} lexes differently alone", statement.text);
        assert!(statement.code().next().is_some(), "an empty statement: {:?}", statement.text);
        next = last + 1;
    }
    for (skipped, _) in &tokens[next..] {
        assert!(
            skipped.kind == Kind::Comment || skipped.is_punct(';'),
            "{dialect:?}: {:?} after the last statement is in none",
            skipped.text
        );
    }
}

fn rejoined_splits_the_same(split: &[Statement], dialect: Engine) {
    let texts: Vec<&str> = split.iter().map(|s| s.text.as_str()).collect();
    let joined = texts.join("\n;\n");
    let again: Vec<String> = statements(&joined, dialect).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, again, "{dialect:?}: joined {joined:?}");
}
