//! Developer tasks for the ugw workspace.
//!
//! - `cargo run -p xtask -- man`: write `man/` and `completions/` from the tools' clap
//!   commands (only the files that changed), removing generated files no tool produces.
//! - `cargo run -p xtask -- check`: compare them with what would be generated; exit 1 when
//!   any is stale, missing or extra.
//!
//! The generated files are committed; `cargo test` runs the check too.

mod generate;
mod man;

use clap::{Arg, Command, value_parser};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The workspace root, where `man/` and `completions/` live.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

fn command() -> Command {
    let root = Arg::new("root")
        .long("root")
        .value_name("DIR")
        .value_parser(value_parser!(PathBuf))
        .help("The workspace root [default: the one xtask was built in]");
    Command::new("xtask")
        .about("Developer tasks for ugw")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("man")
                .about("Write man/ and completions/ from the tools' clap commands")
                .arg(root.clone()),
        )
        .subcommand(
            Command::new("check")
                .about("Fail when man/ or completions/ is not what `man` would write")
                .arg(root),
        )
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let (task, args) = matches.subcommand().expect("a subcommand is required");
    let root = args
        .get_one::<PathBuf>("root")
        .cloned()
        .unwrap_or_else(workspace_root);
    let outcome = match task {
        "man" => man(&root),
        "check" => check(&root),
        _ => unreachable!("clap knows the subcommands"),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn man(root: &Path) -> Result<ExitCode, String> {
    let files = generate::generate()?;
    let (written, removed) = generate::write(root, &files)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    for path in &removed {
        println!("removed {}", path.display());
    }
    println!(
        "{} files generated, {} written, {} removed",
        files.len(),
        written.len(),
        removed.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn check(root: &Path) -> Result<ExitCode, String> {
    let files = generate::generate()?;
    let drift = generate::compare(root, &files)?;
    if drift.is_current() {
        println!("man pages and completions are current");
        Ok(ExitCode::SUCCESS)
    } else {
        eprint!("{}", drift.describe());
        eprintln!(
            "man pages and completions are out of date: run 'make man' (cargo run -p xtask -- man) and commit"
        );
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test --workspace` fails when the committed pages are stale.
    #[test]
    fn committed_man_pages_and_completions_are_current() {
        let files = generate::generate().expect("generation works");
        let drift = generate::compare(&workspace_root(), &files).expect("the files can be read");
        assert!(
            drift.is_current(),
            "man pages and completions are out of date:\n{}run 'make man' and commit",
            drift.describe()
        );
    }

    #[test]
    fn the_command_is_well_formed() {
        command().debug_assert();
    }
}
