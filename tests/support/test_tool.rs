//! ugw-test-tool: a tool with subcommands built only for the tests of `cli`: the common flags
//! after a subcommand, a declared inverse (`restore`), a panic, an exec after the record, and
//! the deadline `Ctx` derives from the declared default `--timeout`.

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::json;
use std::ffi::OsString;
use ugw_shared::cli::Tool;
use ugw_shared::{Ctx, Result, StepResult};

fn command() -> Command {
    ugw_shared::tool_command("ugw-test-tool", "A tool for the tests of cli")
        .subcommand_required(true)
        .subcommand(job("create", "Do a job"))
        .subcommand(job("restore", "Undo a job (runs on a failed record)"))
}

fn job(name: &'static str, about: &'static str) -> Command {
    Command::new(name)
        .about(about)
        .arg(Arg::new("panic").long("panic").action(ArgAction::SetTrue))
        .arg(
            Arg::new("exec")
                .long("exec")
                .num_args(1..)
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(OsString)),
        )
}

#[allow(clippy::unnecessary_wraps)] // the shape every tool's run has
fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let (job, args) = matches.subcommand().expect("a subcommand is required");
    assert!(!args.get_flag("panic"), "asked to panic");
    let deadline_ms = ctx
        .deadline()
        .map(|d| d.saturating_duration_since(ctx.started).as_millis() as u64);
    let result = json!({"job": job, "dry_run": ctx.dry_run, "deadline_ms": deadline_ms});
    let done = StepResult::changed(result);
    Ok(match args.get_many::<OsString>("exec") {
        Some(program) => done.then_exec(program.cloned().collect()),
        None => done,
    })
}

fn main() {
    let tool = Tool::new(command(), run)
        .inverse_when(|m| m.subcommand_name() == Some("restore"))
        .default_timeout("7s");
    ugw_shared::cli::run_tool(tool)
}
