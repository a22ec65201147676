//! Short builders for a tool's own flags, so that each flag is one expression that says what
//! it is (a switch, a value, a path, a duration, a repeatable value) and the clap details that
//! every tool would otherwise restate (value names, parsers, actions) are written once.
//!
//! ```
//! use ugw_shared::cli::flag;
//! let command = clap::Command::new("ugw-example")
//!     .arg(flag::switch("once", "One round, no polling"))
//!     .arg(flag::path("pidfile", "FILE", "Read the process id from FILE"))
//!     .arg(flag::duration("grace", "How long to wait before the signal"))
//!     .arg(flag::value("pid", "N", clap::value_parser!(i32).range(1..), "The process to signal"))
//!     .arg(flag::repeated("header", "NAME: VALUE", clap::value_parser!(String), "Send this header"));
//! let m = command
//!     .try_get_matches_from(["ugw-example", "--once", "--grace", "2s", "--header", "a: b", "--header", "c: d"])
//!     .unwrap();
//! assert!(m.get_flag("once"));
//! assert_eq!(m.get_one::<std::time::Duration>("grace"), Some(&std::time::Duration::from_secs(2)));
//! assert_eq!(m.get_many::<String>("header").unwrap().count(), 2);
//! ```

use crate::{atomic, time};
use clap::builder::{IntoResettable, ValueParser};
use clap::{Arg, ArgAction};
use std::path::PathBuf;

/// `--ID`, on or off.
#[must_use]
pub fn switch(id: &'static str, help: &'static str) -> Arg {
    Arg::new(id).long(id).action(ArgAction::SetTrue).help(help)
}

/// `--ID VALUE_NAME`, one value read by `parser` (given twice, clap refuses it).
#[must_use]
pub fn value(
    id: &'static str,
    value_name: &'static str,
    parser: impl IntoResettable<ValueParser>,
    help: &'static str,
) -> Arg {
    Arg::new(id)
        .long(id)
        .value_name(value_name)
        .value_parser(parser)
        .help(help)
}

/// `--ID VALUE_NAME`, a text value kept as given.
#[must_use]
pub fn text(id: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    value(id, value_name, clap::value_parser!(String), help)
}

/// `--ID VALUE_NAME`, a file or folder (a `PathBuf`, never checked here: the tool says what
/// is wrong with it).
#[must_use]
pub fn path(id: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    value(id, value_name, clap::value_parser!(PathBuf), help)
}

/// `--ID DURATION`, read as every ugw duration is (`90s`, `5m`, `1h30m`, `250ms`).
#[must_use]
pub fn duration(id: &'static str, help: &'static str) -> Arg {
    value(id, "DURATION", ValueParser::new(time::parse_duration), help)
}

/// `--ID N`, a whole number of at least 1 (how many rounds, readings, releases to keep).
#[must_use]
pub fn count(id: &'static str, help: &'static str) -> Arg {
    value(id, "N", clap::value_parser!(u32).range(1..), help)
}

/// `--ID OCTAL`, a file mode as an operator writes it (`755`, `0755`, `0o755`).
#[must_use]
pub fn file_mode(id: &'static str, help: &'static str) -> Arg {
    value(id, "OCTAL", atomic::parse_mode, help)
}

/// `--ID VALUE_NAME`, repeatable: every value is kept, in order.
#[must_use]
pub fn repeated(
    id: &'static str,
    value_name: &'static str,
    parser: impl IntoResettable<ValueParser>,
    help: &'static str,
) -> Arg {
    value(id, value_name, parser, help).action(ArgAction::Append)
}

/// `--ID VALUE_NAME`, repeatable, each value a text kept as given.
#[must_use]
pub fn repeated_text(id: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    repeated(id, value_name, clap::value_parser!(String), help)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Command;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Result<clap::ArgMatches, clap::Error> {
        Command::new("t")
            .arg(switch("once", "h"))
            .arg(value("pid", "N", clap::value_parser!(i32).range(1..), "h"))
            .arg(text("name", "NAME", "h"))
            .arg(path("file", "FILE", "h"))
            .arg(duration("grace", "h"))
            .arg(repeated("header", "H", clap::value_parser!(String), "h"))
            .arg(count("keep", "h"))
            .arg(file_mode("mode", "h"))
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn each_builder_reads_its_kind_of_value() {
        let m = parse(&[
            "--once", "--pid", "7", "--name", "api", "--file", "/x", "--grace", "1m", "--header",
            "a", "--header", "b",
        ])
        .unwrap();
        assert!(m.get_flag("once"));
        assert_eq!(m.get_one::<i32>("pid"), Some(&7));
        assert_eq!(m.get_one::<String>("name").map(String::as_str), Some("api"));
        assert_eq!(m.get_one::<PathBuf>("file"), Some(&PathBuf::from("/x")));
        assert_eq!(
            m.get_one::<Duration>("grace"),
            Some(&Duration::from_secs(60))
        );
        let headers: Vec<&String> = m.get_many::<String>("header").unwrap().collect();
        assert_eq!(headers, ["a", "b"]);
    }

    #[test]
    fn a_count_is_at_least_one_and_a_mode_is_octal() {
        let m = parse(&["--keep", "3", "--mode", "0755"]).unwrap();
        assert_eq!(m.get_one::<u32>("keep"), Some(&3));
        assert_eq!(m.get_one::<u32>("mode"), Some(&0o755));
        assert!(parse(&["--keep", "0"]).is_err());
        assert!(parse(&["--mode", "8"]).is_err());
    }

    #[test]
    fn a_switch_is_off_unless_given_and_takes_no_value() {
        assert!(!parse(&[]).unwrap().get_flag("once"));
        assert!(parse(&["--once=yes"]).is_err());
    }

    #[test]
    fn a_bad_value_is_refused_by_its_parser() {
        assert!(parse(&["--pid", "0"]).is_err());
        assert!(
            parse(&["--grace", "30"]).is_err(),
            "a duration needs its unit"
        );
        assert!(parse(&["--grace", "soon"]).is_err());
    }

    #[test]
    fn a_value_given_twice_is_refused_but_a_repeated_one_keeps_all() {
        // As for every tool's flags today: `--pid 1 --pid 2` is a mistake to report, not a
        // silent choice of one of them.
        assert!(parse(&["--name", "a", "--name", "b"]).is_err());
        let m = parse(&["--header", "a", "--header", "a"]).unwrap();
        assert_eq!(m.get_many::<String>("header").unwrap().count(), 2);
    }
}
