//! ugw-shared: the mechanisms every ugw tool uses, written once. A tool crate exposes
//! `tool()` (a `cli::Tool`: its command and `run(&mut Ctx, &ArgMatches)`); `cli::run_tool`
//! does the rest.

pub mod atomic;
pub mod cancel;
pub mod cli;
pub mod ctx;
pub mod db;
pub mod digest;
pub mod error;
pub mod haproxy;
pub mod http;
pub mod input;
pub mod jq;
pub mod lock;
pub mod owner_only;
pub mod poll;
#[cfg(target_os = "linux")]
pub mod proc_net;
#[cfg(target_os = "linux")]
pub mod process;
#[cfg(target_os = "linux")]
pub mod procfs;
pub mod prometheus;
pub mod record;
pub mod report;
pub mod results;
pub mod runner;
pub mod scrub;
pub mod space;
pub mod tcp;
pub mod time;
pub mod tree_manifest;
pub mod unpack;
pub mod version;

pub use cli::tool_command;
pub use ctx::Ctx;
pub use error::{Error, ErrorKind, Result};
pub use results::StepResult;
