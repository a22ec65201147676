//! The pid a pidfile names, read one way by every tool that takes `--pidfile` (ugw-drain,
//! ugw-wait-healthy): its first word. `123\n`, `123 app` and the two lines `ugw-swap --start`
//! writes (the pid, then which process that is) all name 123.

/// How much of a pidfile a tool reads: a pid and one line of JSON (ugw-swap's second line).
pub const CAP: usize = 4096;

/// The pid `text` names, or what it holds instead ("empty", "holds 'x', not a pid") for a
/// message.
///
/// # Errors
/// When the first word of `text` is not a positive process id.
pub fn parse(text: &str) -> std::result::Result<i32, String> {
    let word = text.split_whitespace().next().unwrap_or("");
    match word.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ if word.is_empty() => Err("empty".into()),
        _ => Err(format!(
            "holds '{}', not a pid",
            crate::scrub::excerpt(word.as_bytes(), 20)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_first_word_is_the_pid() {
        assert_eq!(parse("123\n"), Ok(123));
        assert_eq!(parse("  123 app\n"), Ok(123));
        assert_eq!(
            parse("4242\n{\"by\":\"ugw-swap --start\",\"start_ticks\":1,\"boot_id\":\"b\"}\n"),
            Ok(4242)
        );
    }

    #[test]
    fn anything_else_says_what_it_holds() {
        assert_eq!(parse(""), Err("empty".to_string()));
        assert_eq!(parse(" \n"), Err("empty".to_string()));
        assert_eq!(parse("0\n"), Err("holds '0', not a pid".to_string()));
        assert_eq!(parse("-5"), Err("holds '-5', not a pid".to_string()));
        assert_eq!(parse("app 123"), Err("holds 'app', not a pid".to_string()));
    }
}
