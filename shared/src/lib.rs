//! ugw-shared: the mechanisms two or more ugw tools use, written once (tools never import
//! each other). A tool crate exposes `tool()` (a `cli::Tool`: its command and
//! `run(&mut Ctx, &ArgMatches)`); `cli::run_tool` does the rest.
//!
//! Who uses what:
//! - every tool, through `cli`: `cli`, `ctx`, `error`, `record`, `results`, `report`, `input`,
//!   `scrub`, `cancel`, `time`, `version`, `lock`;
//! - files: `atomic` (all but ugw-wait-healthy), `owner_only` (ugw-fetch, ugw-swap), `space`
//!   and `unpack` (ugw-fetch, ugw-backup), `digest` (ugw-fetch, ugw-swap, ugw-backup),
//!   `tree_manifest` (ugw-fetch, ugw-swap);
//! - children and waits: `runner` (all but ugw-drain and ugw-migrate), `poll` (ugw-drain,
//!   ugw-fetch, ugw-verify, ugw-wait-healthy), `process` (ugw-drain, ugw-swap,
//!   ugw-wait-healthy), `pidfile` (ugw-drain, ugw-wait-healthy), `procfs` (`input`);
//! - the network: `http` (ugw-fetch, ugw-drain, ugw-verify, ugw-wait-healthy; its TLS judges
//!   ugw-migrate), `tcp` (ugw-wait-healthy, `http`, `haproxy`), `prometheus` (ugw-drain,
//!   ugw-verify), `jq` (ugw-verify, ugw-wait-healthy), `db` (ugw-backup, ugw-migrate);
//! - containers: `docker` (the CLI and its image digests: ugw-fetch, ugw-swap, ugw-migrate,
//!   ugw-backup, ugw-drain);
//! - one tool only, kept here beside the mechanisms they are built on: `haproxy` (its admin
//!   socket and Data Plane API) and `proc_net` (connections on a port), both ugw-drain's.
//!
//! No unsafe code: the system calls without a safe API are in `ugw-sys`. Only tests may
//! use it, each with an `expect` saying why (`std::env::set_var` is unsafe since Rust 2024).
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

pub mod atomic;
pub mod cancel;
pub mod cli;
pub mod ctx;
pub mod db;
pub mod digest;
pub mod docker;
pub mod error;
pub mod failpoint;
pub mod haproxy;
pub mod http;
pub mod input;
pub mod jq;
pub mod lock;
pub mod owner_only;
pub mod pidfile;
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
