//! A small SQL tokenizer: enough of the lexical rules of SQLite and PostgreSQL (comments,
//! quoted identifiers, strings, dollar quoting) to split a file into statements the way the
//! server would, and to hand the linter words rather than lines.

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
    /// `"name"`, `` `name` `` or `[name]`: never a keyword.
    Quoted,
    /// `'text'`, `E'text'`, `$tag$text$tag$`.
    String,
    Number,
    /// `-- …` or `/* … */`.
    Comment,
    /// Any other character: `(`, `)`, `,`, `;`, operators.
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

/// Split `sql` into tokens. Unterminated quotes and comments run to the end (the server
/// will say what is wrong with them).
#[must_use]
pub fn tokenize(sql: &str) -> Vec<(Token, std::ops::Range<usize>)> {
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
        let kind = match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find_from(bytes, i, b"\n").unwrap_or(bytes.len());
                Kind::Comment
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(bytes, i);
                Kind::Comment
            }
            b'\'' => {
                i = quoted_end(bytes, i, b'\'');
                Kind::String
            }
            b'"' | b'`' => {
                i = quoted_end(bytes, i, c);
                Kind::Quoted
            }
            b'[' => {
                i = find_from(bytes, i + 1, b"]").map_or(bytes.len(), |e| e + 1);
                Kind::Quoted
            }
            b'$' => {
                if let Some(tag) = dollar_tag(bytes, i) {
                    i = find_from(bytes, i + tag.len(), tag).map_or(bytes.len(), |e| e + tag.len());
                    Kind::String
                } else {
                    // `$1`: a parameter.
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    Kind::Punct
                }
            }
            b'0'..=b'9' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                Kind::Number
            }
            _ if is_word_start(c) => {
                // E'…' and friends are strings with a prefix.
                let mut end = i + 1;
                while end < bytes.len() && is_word_char(bytes[end]) {
                    end += 1;
                }
                if end - i == 1 && bytes.get(end) == Some(&b'\'') && b"eEbBxXnNuU".contains(&c) {
                    i = quoted_end(bytes, end, b'\'');
                    Kind::String
                } else {
                    i = end;
                    Kind::Word
                }
            }
            _ => {
                // One character at a time, so `;` `(` `)` `,` are always tokens of their own.
                i += sql[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Punct
            }
        };
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

/// Split `sql` into statements at top-level `;`. A `BEGIN … END` body (an SQLite trigger,
/// a PostgreSQL `BEGIN ATOMIC` function) is kept whole. Empty statements are dropped;
/// comments after the last `;` are dropped too.
#[must_use]
pub fn statements(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut current: Vec<(Token, std::ops::Range<usize>)> = Vec::new();
    let mut body_depth = 0usize;
    for (token, range) in tokenize(sql) {
        let first_code = current.iter().find(|(t, _)| t.kind != Kind::Comment);
        let opens_body = token.is("BEGIN") && first_code.is_some_and(|(t, _)| t.is("CREATE"));
        if opens_body || (token.is("CASE") && body_depth > 0) {
            body_depth += 1;
        } else if token.is("END") && body_depth > 0 {
            body_depth -= 1;
        }
        if token.is_punct(';') && body_depth == 0 {
            push_statement(sql, &mut out, std::mem::take(&mut current));
        } else {
            current.push((token, range));
        }
    }
    push_statement(sql, &mut out, current);
    out
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
    out.push(Statement {
        text: sql[start..end].to_string(),
        tokens: tokens.into_iter().map(|(t, _)| t).collect(),
        line,
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

/// The end of a quoted run starting at `start`; a doubled quote is an escaped one.
fn quoted_end(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        // E'…' strings escape with a backslash; a backslash elsewhere is harmless here.
        if bytes[i] == b'\\'
            && quote == b'\''
            && start > 0
            && bytes[start - 1].eq_ignore_ascii_case(&b'e')
        {
            i += 2;
            continue;
        }
        i += 1;
    }
    bytes.len()
}

/// PostgreSQL block comments nest.
fn block_comment_end(bytes: &[u8], start: usize) -> usize {
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

/// `$tag$` or `$$` at `start`, if that is what is there.
fn dollar_tag(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != b'$' {
        if !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
            || bytes[start + 1].is_ascii_digit()
        {
            return None;
        }
        i += 1;
    }
    (i < bytes.len()).then(|| &bytes[start..=i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        statements(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn semicolons_in_strings_comments_and_dollar_quotes_do_not_split() {
        let sql = "INSERT INTO t VALUES ('a;b', \"c;d\"); -- x; y\n\
                   /* a; /* nested; */ b; */ CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   SELECT $$;$$, E'it\\'s;'";
        let got = texts(sql);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0], "INSERT INTO t VALUES ('a;b', \"c;d\")");
        assert!(got[1].starts_with("-- x; y\n/* a;"), "{}", got[1]);
        assert!(got[1].ends_with("LANGUAGE sql"), "{}", got[1]);
        assert_eq!(got[2], "SELECT $$;$$, E'it\\'s;'");
    }

    #[test]
    fn trigger_bodies_stay_whole_and_lines_are_counted() {
        let sql = "\n\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = CASE WHEN 1 THEN 2 END;\n  DELETE FROM c;\nEND;\nSELECT 1;  -- trailing\n";
        let got = statements(sql);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(got[0].line, 3);
        assert!(got[0].text.ends_with("END"));
        assert_eq!(got[1].line, 7);
    }

    #[test]
    fn quoted_identifiers_are_not_keywords() {
        let tokens: Vec<Token> = tokenize("DROP \"table\" [index] `column` $1")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert!(tokens[0].is("drop"));
        assert!(tokens[1..4].iter().all(|t| t.kind == Kind::Quoted));
        assert!(!tokens[1].is("table"));
        assert_eq!(tokens[4].kind, Kind::Punct);
    }
}
