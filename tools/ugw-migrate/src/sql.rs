//! A small SQL tokenizer: the lexical rules of SQLite and PostgreSQL (comments, quoted
//! identifiers, strings, dollar quoting), each dialect its own, to split a file into
//! statements the way the server would, and to hand the linter words rather than lines.
//!
//! Where the dialects differ: PostgreSQL nests block comments, has `E'…'` strings with
//! backslash escapes, `U&'…'`, and `$tag$…$tag$` quoting; SQLite ends a block comment at the
//! first `*/`, has no backslash escapes, quotes identifiers also with `` ` `` and `[…]`, and
//! reads `$name` as a parameter.

use ugw_shared::db::Engine;

/// One token, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A keyword or a bare identifier; compare with `Token::is`.
    Word,
    /// `"name"` (and in SQLite `` `name` `` or `[name]`): never a keyword.
    Quoted,
    /// `'text'`, `E'text'`, `$tag$text$tag$`.
    String,
    Number,
    /// `-- …` or `/* … */`.
    Comment,
    /// Any other character: `(`, `)`, `,`, `;`, operators, parameters.
    Punct,
}

impl Token {
    /// Whether this is the keyword `word` (case-insensitive).
    #[must_use]
    pub fn is(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(word)
    }

    #[must_use]
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.text.len() == 1 && self.text.starts_with(c)
    }
}

/// A statement: its tokens (comments included), its text, and where it starts.
#[derive(Debug, Clone)]
pub struct Statement {
    pub tokens: Vec<Token>,
    /// The source text from its first token to its end, without the `;`.
    pub text: String,
    /// The line of its first token that is not a comment.
    pub line: usize,
    /// The line `text` starts on (a comment before the statement's code included), which
    /// a server's error position counts from.
    pub text_line: usize,
}

impl Statement {
    /// The tokens that are not comments.
    pub fn code(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.kind != Kind::Comment)
    }

    pub fn comments(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.kind == Kind::Comment)
    }
}

/// Split `sql` into tokens by `dialect`'s rules. Unterminated quotes and comments run to the
/// end (the server will say what is wrong with them).
#[must_use]
pub fn tokenize(sql: &str, dialect: Engine) -> Vec<(Token, std::ops::Range<usize>)> {
    let pg = dialect == Engine::Postgres;
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            if c == b'\n' {
                line += 1;
            }
            i += 1;
            continue;
        }
        let start = i;
        let (end, kind) = token_at(sql, start, pg);
        i = end;
        let text = &sql[start..i];
        out.push((
            Token {
                kind,
                text: text.to_string(),
                line,
            },
            start..i,
        ));
        line += text.matches('\n').count();
    }
    out
}

/// The token that starts at `start` (not whitespace): where it ends, and its kind.
fn token_at(sql: &str, start: usize, pg: bool) -> (usize, Kind) {
    let bytes = sql.as_bytes();
    let c = bytes[start];
    let i = start;
    match c {
        b'-' if bytes.get(i + 1) == Some(&b'-') => (
            find_from(bytes, i, b"\n").unwrap_or(bytes.len()),
            Kind::Comment,
        ),
        b'/' if bytes.get(i + 1) == Some(&b'*') => {
            let end = if pg {
                nested_comment_end(bytes, i)
            } else {
                find_from(bytes, i + 2, b"*/").map_or(bytes.len(), |e| e + 2)
            };
            (end, Kind::Comment)
        }
        b'\'' => (quoted_end(bytes, i, b'\'', false), Kind::String),
        b'"' => (quoted_end(bytes, i, b'"', false), Kind::Quoted),
        b'`' if !pg => (quoted_end(bytes, i, b'`', false), Kind::Quoted),
        b'[' if !pg => (
            find_from(bytes, i + 1, b"]").map_or(bytes.len(), |e| e + 1),
            Kind::Quoted,
        ),
        b'$' => dollar(bytes, i, pg),
        b'0'..=b'9' => {
            let mut end = i;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'.') {
                end += 1;
            }
            (end, Kind::Number)
        }
        b'u' | b'U'
            if pg
                && bytes.get(i + 1) == Some(&b'&')
                && matches!(bytes.get(i + 2), Some(b'\'' | b'"')) =>
        {
            // U&'…' and U&"…": standard quoting, the escapes are the server's business.
            let quote = bytes[i + 2];
            let end = quoted_end(bytes, i + 2, quote, false);
            (
                end,
                if quote == b'"' {
                    Kind::Quoted
                } else {
                    Kind::String
                },
            )
        }
        _ if is_word_start(c) => word(bytes, i, pg),
        // One character at a time, so `;` `(` `)` `,` are always tokens of their own.
        _ => (
            i + sql[i..].chars().next().map_or(1, char::len_utf8),
            Kind::Punct,
        ),
    }
}

/// `$tag$…$tag$` (PostgreSQL), or a parameter: `$1`, SQLite's `$name`. The end and kind.
fn dollar(bytes: &[u8], start: usize, pg: bool) -> (usize, Kind) {
    if let Some(tag) = dollar_tag(bytes, start).filter(|_| pg) {
        let end = find_from(bytes, start + tag.len(), tag).map_or(bytes.len(), |e| e + tag.len());
        return (end, Kind::String);
    }
    let mut i = start + 1;
    while i < bytes.len() && is_word_char(bytes[i]) && bytes[i] != b'$' {
        i += 1;
    }
    (i, Kind::Punct)
}

/// A word, or a string with a one-letter prefix: `E'…'` escapes with a backslash
/// (PostgreSQL); `B'…'`, `X'…'`, `N'…'` do not (SQLite knows only `X'…'`).
fn word(bytes: &[u8], start: usize, pg: bool) -> (usize, Kind) {
    let mut end = start + 1;
    while end < bytes.len() && is_word_char(bytes[end]) {
        end += 1;
    }
    let c = bytes[start];
    let prefixes: &[u8] = if pg { b"eEbBxXnN" } else { b"xX" };
    if end - start == 1 && bytes.get(end) == Some(&b'\'') && prefixes.contains(&c) {
        (
            quoted_end(bytes, end, b'\'', c.eq_ignore_ascii_case(&b'e')),
            Kind::String,
        )
    } else {
        (end, Kind::Word)
    }
}

/// What kind of statement this is, as far as splitting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not known yet: fewer words seen than the header needs.
    Unknown,
    Plain,
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (PostgreSQL): `BEGIN ATOMIC … END` is its body.
    Routine,
    /// `CREATE [TEMP|TEMPORARY] TRIGGER [IF NOT EXISTS] … ON … BEGIN … END` (SQLite).
    Trigger,
    /// `CREATE [OR REPLACE] RULE … DO (stmt; stmt)` (PostgreSQL): `;` inside parentheses.
    Rule,
}

fn shape(header: &[&Token], dialect: Engine) -> Shape {
    let words: Vec<&&Token> = header.iter().take(4).collect();
    if words.is_empty() {
        return Shape::Unknown;
    }
    if !words[0].is("CREATE") {
        return Shape::Plain;
    }
    let mut at = 1;
    let optional: &[&str] = match dialect {
        Engine::Postgres => &["OR", "REPLACE"],
        Engine::Sqlite => &["TEMP", "TEMPORARY"],
    };
    while words
        .get(at)
        .is_some_and(|w| optional.iter().any(|o| w.is(o)))
    {
        at += 1;
    }
    let Some(what) = words.get(at) else {
        return if header.len() >= 4 {
            Shape::Plain
        } else {
            Shape::Unknown
        };
    };
    match dialect {
        Engine::Postgres if what.is("FUNCTION") || what.is("PROCEDURE") => Shape::Routine,
        Engine::Postgres if what.is("RULE") => Shape::Rule,
        Engine::Sqlite if what.is("TRIGGER") => Shape::Trigger,
        _ => Shape::Plain,
    }
}

/// Split `sql` into statements at top-level `;`, by `dialect`'s rules. Only a real body is
/// kept whole: `CREATE FUNCTION|PROCEDURE … BEGIN ATOMIC … END` (PostgreSQL) and
/// `CREATE TRIGGER … BEGIN … END` (SQLite), with the `CASE … END` inside; a `begin` anywhere
/// else (a column, a `BEGIN` of its own) opens nothing. Empty statements are dropped;
/// comments after the last `;` are dropped too.
#[must_use]
pub fn statements(sql: &str, dialect: Engine) -> Vec<Statement> {
    let tokens = tokenize(sql, dialect);
    let mut out: Vec<Statement> = Vec::new();
    let mut current: Vec<(Token, std::ops::Range<usize>)> = Vec::new();
    let mut header: Vec<&Token> = Vec::new();
    let mut shape_now = Shape::Unknown;
    let mut body_depth = 0usize;
    let mut paren_depth = 0usize;
    let mut seen_on = false;
    let mut previous_code: Option<&Token> = None;
    // The line of the `;` that ended the last statement: a comment after it on that line
    // (`DROP TABLE t; -- ugw:allow drop-table`) belongs to that statement.
    let mut ended_on: Option<usize> = None;
    for (index, (token, range)) in tokens.iter().enumerate() {
        if token.kind == Kind::Comment {
            if current.is_empty()
                && ended_on == Some(token.line)
                && let Some(last) = out.last_mut()
            {
                last.tokens.push(token.clone());
            } else {
                current.push((token.clone(), range.clone()));
            }
            continue;
        }
        if header.len() < 4 {
            header.push(token);
            shape_now = shape(&header, dialect);
        }
        // `new.begin`, `t.end`: a column, not a keyword.
        let after_dot = previous_code.is_some_and(|p| p.is_punct('.'));
        let next_code = tokens[index + 1..]
            .iter()
            .map(|(t, _)| t)
            .find(|t| t.kind != Kind::Comment);
        if !after_dot {
            if body_depth > 0 {
                if token.is("CASE") {
                    body_depth += 1;
                } else if token.is("END") {
                    body_depth -= 1;
                }
            } else if token.is("BEGIN") {
                let opens = match shape_now {
                    Shape::Routine => next_code.is_some_and(|t| t.is("ATOMIC")),
                    Shape::Trigger => seen_on,
                    _ => false,
                };
                if opens {
                    body_depth = 1;
                }
            } else if token.is("ON") {
                seen_on = true;
            }
        }
        if shape_now == Shape::Rule {
            if token.is_punct('(') {
                paren_depth += 1;
            } else if token.is_punct(')') {
                paren_depth = paren_depth.saturating_sub(1);
            }
        }
        if token.is_punct(';') && body_depth == 0 && paren_depth == 0 {
            let before = out.len();
            push_statement(sql, &mut out, std::mem::take(&mut current));
            ended_on = (out.len() > before).then_some(token.line);
            header.clear();
            shape_now = Shape::Unknown;
            seen_on = false;
            previous_code = None;
        } else {
            current.push((token.clone(), range.clone()));
            previous_code = Some(token);
            ended_on = None;
        }
    }
    push_statement(sql, &mut out, current);
    out
}

/// Whether `sql` ends at the top level: every string, quoted name, comment and body it
/// opens is closed, so that SQL appended after a newline and a `;` is read as statements of
/// their own (asked of the splitter with a probe statement appended).
#[must_use]
pub fn ends_closed(sql: &str, dialect: Engine) -> bool {
    const PROBE: &str = "SELECT 7730";
    let probed = format!("{sql}\n;{PROBE}");
    statements(&probed, dialect)
        .last()
        .is_some_and(|s| s.text == PROBE)
}

fn push_statement(
    sql: &str,
    out: &mut Vec<Statement>,
    tokens: Vec<(Token, std::ops::Range<usize>)>,
) {
    let Some(line) = tokens
        .iter()
        .find(|(t, _)| t.kind != Kind::Comment)
        .map(|(t, _)| t.line)
    else {
        return;
    };
    let start = tokens.first().map_or(0, |(_, r)| r.start);
    let end = tokens.last().map_or(0, |(_, r)| r.end);
    let text_line = tokens.first().map_or(line, |(t, _)| t.line);
    out.push(Statement {
        text: sql[start..end].to_string(),
        tokens: tokens.into_iter().map(|(t, _)| t).collect(),
        line,
        text_line,
    });
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_word_char(c: u8) -> bool {
    is_word_start(c) || c.is_ascii_digit() || c == b'$'
}

fn find_from(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The end of a quoted run starting at `start`; a doubled quote is an escaped one, and so is
/// a backslashed one when `backslash` (PostgreSQL's `E'…'`).
fn quoted_end(bytes: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if backslash && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// PostgreSQL block comments nest: `/* a /* b */ c */` is one comment.
fn nested_comment_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$` or `$$` at `start`, if that is what is there (a tag does not start with a digit).
fn dollar_tag(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != b'$' {
        let c = bytes[i];
        let fits = if i == start + 1 {
            is_word_start(c)
        } else {
            is_word_start(c) || c.is_ascii_digit()
        };
        if !fits {
            return None;
        }
        i += 1;
    }
    (i < bytes.len()).then(|| &bytes[start..=i])
}

#[cfg(test)]
mod tests;
