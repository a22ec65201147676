//! Typed step results: what each tool leaves in its step's `result` for the tools after it.
//! One struct per tool, written with it and read back with it, so a field name is checked by
//! the compiler on both sides. Tools never import each other; they meet here.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::ffi::OsString;

/// What a tool's `run` returns when it succeeded.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    pub changed: bool,
    pub result: Value,
    /// A program to run in this process once the record is written (`… -- ./server`). The
    /// record then goes only to `--record FILE`: stdout belongs to that program.
    pub exec: Option<Vec<OsString>>,
}

impl StepResult {
    #[must_use]
    pub fn unchanged(result: Value) -> Self {
        StepResult {
            changed: false,
            result,
            exec: None,
        }
    }

    #[must_use]
    pub fn changed(result: Value) -> Self {
        StepResult {
            changed: true,
            result,
            exec: None,
        }
    }

    /// Replace this process with `argv` once the record is saved (only when the step is ok).
    #[must_use]
    pub fn then_exec(mut self, argv: Vec<OsString>) -> Self {
        self.exec = Some(argv);
        self
    }
}

/// The result a tool writes in its step; `TOOL` is the tool's name, which is how a later tool
/// finds the step (`Record::last_result::<T>()`).
pub trait ToolResult: Serialize + DeserializeOwned {
    const TOOL: &'static str;
}

impl StepResult {
    /// The `StepResult` a tool's `run` returns for a typed result.
    #[must_use]
    pub fn typed<T: ToolResult>(changed: bool, result: &T) -> Self {
        let value = to_json(result);
        if changed {
            StepResult::changed(value)
        } else {
            StepResult::unchanged(value)
        }
    }
}

/// A tool result as JSON, for a step that succeeded or failed.
pub(crate) fn to_json<T: ToolResult>(result: &T) -> Value {
    // A struct of strings, numbers and booleans always serialises; only a map with
    // non-string keys could fail, and no result type has one.
    serde_json::to_value(result).expect("a tool result serialises to JSON")
}

/// What `ugw-fetch` staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Fetched {
    /// Where it came from, with any credentials redacted.
    pub url: String,
    /// The staged file, or the folder it was extracted into.
    pub path: String,
    /// The artifact's digest, lowercase hex.
    pub sha256: String,
    pub bytes: u64,
    /// The release label (`--release`, or parsed from the file name); `None` when neither.
    pub version: Option<String>,
    /// Whether the digest (or signature) was checked; false only with `--no-verify`.
    pub verified: bool,
    /// Whether the download continued an earlier partial one.
    pub resumed: bool,
    /// An extracted folder: the digest of its manifest (`.ugw-fetch` inside it lists every
    /// entry), which ugw-swap checks the folder against before it publishes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
}

impl ToolResult for Fetched {
    const TOOL: &'static str = "ugw-fetch";
}

/// What `ugw-fetch --image` pulled and checked (or found present already): the image a later
/// step of this run (`ugw-swap --compose`, `ugw-migrate up --from-image`) pins and checks
/// again against `docker image inspect` before it uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FetchedImage {
    /// The repository (`127.0.0.1:5000/demo`).
    pub image: String,
    /// `sha256:…`, the manifest digest the registry serves it under.
    pub digest: String,
    /// `image@digest`: what a Compose file or `docker run` pins.
    pub reference: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    /// The local image id (`sha256:…` of its config).
    #[serde(default)]
    pub id: String,
    /// Whether this step pulled it (false: it was present already).
    #[serde(default)]
    pub pulled: bool,
    #[serde(default)]
    pub verified: bool,
}

impl ToolResult for FetchedImage {
    const TOOL: &'static str = "ugw-fetch";
}

/// The release label of the last `ugw-fetch` step, whichever it fetched: a file
/// ([`Fetched`]) or an image ([`FetchedImage`]) both record `version`. What a version check
/// expects by default reads this, so that it works after `ugw-fetch --image` too (reading
/// `Fetched` there failed: an image step has no `url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FetchedVersion {
    #[serde(default)]
    pub version: Option<String>,
}

impl ToolResult for FetchedVersion {
    const TOOL: &'static str = "ugw-fetch";
}

/// What a dry-run `ugw-fetch` step would have staged (nothing was fetched): where, from where,
/// as which release, and the digest it would have checked when that is known already. Later
/// tools dry-run on it (`ugw-migrate up --dry-run` names the migrations folder it would read);
/// a real run never reads it (`ThisRun::dry_run_result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FetchPlanned {
    pub url: String,
    /// The file, or the folder it would be extracted into.
    pub path: String,
    pub version: Option<String>,
    /// The digest given or listed for it (`--sha256`, a `SHA256SUMS` entry); `None` when only
    /// the download would tell (a signature), or with `--no-verify`.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub extract: bool,
    /// Always false here: a dry run fetches nothing (an artifact staged already gives a real
    /// `Fetched` result instead, marked by the step's `dry_run`).
    #[serde(default)]
    pub fetched: bool,
}

impl ToolResult for FetchPlanned {
    const TOOL: &'static str = "ugw-fetch";
}

/// What `ugw-wait-healthy` saw: whether the goal was met, how long it took, and what each
/// target last did (`ugw-verify` and the end-to-end tools read it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WaitHealthy {
    /// Whether the goal (every target up, or with `--until-down` down) was met.
    pub healthy: bool,
    pub mode: WaitMode,
    pub targets: Vec<WaitTarget>,
    pub rounds: u64,
    pub attempts: u64,
    pub elapsed_ms: u64,
    pub time_to_healthy_ms: Option<u64>,
    /// How far past the deadline the wait ended (0 when it did not overrun).
    pub deadline_overrun_ms: u64,
    /// The version the first `--url` expected, if any.
    pub expect_version: Option<String>,
    /// The process the wait watched (`--pid`, `--pidfile`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<WatchedProcess>,
}

/// The process a wait watched: a wait ends at once, failed, when it exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WatchedProcess {
    /// Its pid; `None` when the pidfile never named one.
    pub pid: Option<i32>,
    /// The `--pidfile` it was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<String>,
    /// Whether it had exited when the wait ended.
    pub exited: bool,
    /// Its exit code, when it exited and that could be known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did and that could be known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

impl ToolResult for WaitHealthy {
    const TOOL: &'static str = "ugw-wait-healthy";
}

/// What a wait waits for: the targets up, or (`--until-down`) down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitMode {
    Up,
    Down,
}

/// One target of a wait, as it last answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WaitTarget {
    /// The URL, `tcp HOST:PORT` or `cmd '…'`.
    pub target: String,
    pub kind: TargetKind,
    pub attempts: u64,
    pub passes: u64,
    /// Whether its last answer passed.
    pub passing: bool,
    pub last_status: Option<u16>,
    pub last_exit: Option<i32>,
    /// Why its last answer did not pass (or the fail-fast condition it met).
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    /// The start of its last body (or a command's output), scrubbed.
    pub body_excerpt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Http,
    Tcp,
    Cmd,
}

/// What `ugw-backup create` wrote (`verify`, `restore` and `prune` find the archive here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Backup {
    /// The archive's path.
    pub archive: String,
    /// The archive's digest, lowercase hex (also in its `.sha256` sidecar).
    pub sha256: String,
    /// The archive's size.
    pub bytes: u64,
    /// What went in: file contents and database copies.
    pub input_bytes: u64,
    pub files: u64,
    /// The SQLite databases snapshotted (their live paths).
    pub sqlite: Vec<String>,
    /// The PostgreSQL databases dumped (their URLs, without passwords).
    pub pg: Vec<String>,
    /// Files whose size or mtime moved while they were read (flagged in the manifest).
    pub changed_while_read: u64,
    pub app_version: Option<String>,
    pub elapsed_ms: u64,
    /// Older backups removed by `--keep`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
    /// The Docker named volumes backed up (`--volume`), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

impl ToolResult for Backup {
    const TOOL: &'static str = "ugw-backup";
}

/// What `ugw-migrate up` did, on success and on failure alike (a failed step keeps what ran
/// before the failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Migrated {
    /// The database URL, without its password.
    pub db: String,
    /// The migrations folder.
    pub dir: String,
    /// `pre`, `post` or `all`.
    pub phase: String,
    /// What this run applied, in order.
    pub applied: Vec<AppliedMigration>,
    /// What is still pending after it, in both phases.
    pub pending: Vec<PendingMigration>,
    /// How long the run waited for the migration lock.
    pub lock_wait_ms: u64,
    pub warnings: Vec<String>,
}

impl ToolResult for Migrated {
    const TOOL: &'static str = "ugw-migrate";
}

/// One migration `up` applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
    /// `pre` or `post`.
    pub phase: String,
    pub duration_ms: u64,
}

/// One migration not applied yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingMigration {
    pub version: i64,
    pub name: String,
    /// `pre` or `post`.
    pub phase: String,
    /// The sha256 of its normalised text, lowercase hex.
    pub checksum: String,
}

/// What `ugw-swap` did: a swap, a rollback or `status` (`--rollback` reads the last one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Swapped {
    /// `release` (--root) or `binary` (--target).
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The release live before this step (binary mode: its sha256).
    pub previous: Option<String>,
    /// The release live after it (binary mode: its sha256).
    pub current: Option<String>,
    #[serde(default)]
    pub pruned: Vec<String>,
    #[serde(default)]
    pub restarted: bool,
    #[serde(default)]
    pub changed: bool,
    /// The step was a `--rollback` (one that found nothing to take back has `changed` false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// The release this step marked failed (a rollback, or a restart that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_failed: Option<String>,
    /// The release folder was adopted from a `current` made by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<RestartRun>,
    /// `status`: every release kept, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<Vec<SwapRelease>>,
    /// `--dry-run`: what would have been done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub would: Option<String>,
    /// `--compose` (mode `compose`): the project and containers; `previous` and `current`
    /// are then image references pinned by digest (`repo@sha256:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeSwap>,
}

/// What `ugw-swap --compose` switched: which project's services, how, and the containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ComposeSwap {
    /// The Compose file, as an absolute path.
    pub file: String,
    pub project: String,
    pub services: Vec<String>,
    /// `stop-first` or `start-first`.
    pub strategy: String,
    /// start-first: the port of the slot live after this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    /// The containers running the services after this step (names).
    #[serde(default)]
    pub containers: Vec<String>,
    /// `--keep`: the images of the repository removed (references).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_images: Vec<String>,
}

impl ToolResult for Swapped {
    const TOOL: &'static str = "ugw-swap";
}

/// One release as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SwapRelease {
    pub version: String,
    pub sha256: Option<String>,
    pub failed: bool,
    pub current: bool,
}

/// One run of `--restart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RestartRun {
    /// `after_switch` or `after_revert`.
    pub phase: String,
    pub ok: bool,
    /// `exit 0`, `exit 3`, `killed by signal 9`, `timed out after 2 s`.
    pub outcome: String,
    pub exit: Option<i32>,
    pub elapsed_ms: u64,
    pub output: String,
}

/// What `ugw-drain` did (or, with `undo`, undid): `ugw-drain --undo` without method flags
/// reads the last one to know what to put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Drained {
    pub method: DrainMethod,
    /// `BACKEND/SERVER` (HAProxy).
    pub server: Option<String>,
    /// The node's state before the step: HAProxy's admin state (`ready`, `drain`, `maint`),
    /// `running`/`gone` for a process, `present`/`absent` for a flag file, `posted` for a hook.
    pub state_before: Option<String>,
    pub state_after: Option<String>,
    /// Work in flight when the wait began and when it ended (`None`: not measured).
    pub inflight_start: Option<u64>,
    pub inflight_end: Option<u64>,
    /// In-flight readings taken.
    pub readings: u64,
    /// From the change to the end of the wait.
    pub waited_ms: u64,
    /// The deadline passed and `--on-timeout proceed` went on anyway.
    pub forced: bool,
    pub changed: bool,
    /// This step put the node back (`--undo`).
    pub undo: bool,
    /// What the drain escalated to when in-flight work did not end in time: `maint`
    /// (`--maint-after`), `TERM` or `KILL` (`--on-timeout escalate`).
    pub escalated: Option<String>,
    /// The HAProxy runtime API endpoints, and each one's admin state before the step.
    pub sockets: Vec<String>,
    pub states_before: Vec<String>,
    pub flag_file: Option<String>,
    pub http_post: Option<String>,
    pub pid: Option<i32>,
    /// `--container`: the id of the container signalled, and the exit code of its main
    /// process once it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What in-flight work was measured by: `haproxy scur+qcur`, `metric URL#NAME`, `port N`.
    pub inflight_source: Option<String>,
}

impl ToolResult for Drained {
    const TOOL: &'static str = "ugw-drain";
}

/// How `ugw-drain` takes a node out of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainMethod {
    Haproxy,
    Signal,
    FlagFile,
    HttpPost,
}

/// What `ugw-verify` found: every check, and with `--compare` how it measures against the
/// baseline; a `baseline` step also keeps the observations later runs compare with.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Verified {
    /// `verify`, or `baseline` for a step that took one.
    pub mode: String,
    pub passed: u64,
    /// The names of the checks that did not pass (failed, skipped or short of data).
    pub failed: Vec<String>,
    pub checks: Vec<CheckResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparison: Vec<Comparison>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<VerifyBaseline>,
}

impl ToolResult for Verified {
    const TOOL: &'static str = "ugw-verify";
}

/// One check as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CheckResult {
    pub name: String,
    /// `http`, `tls`, `cmd`, `metrics` or `versions`.
    #[serde(rename = "type")]
    pub kind: String,
    pub ok: bool,
    /// `passed`, `failed`, `skipped` (a check it needs failed) or `insufficient_data`.
    pub outcome: String,
    pub expected: String,
    pub observed: String,
    pub elapsed_ms: u64,
    /// Why it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What a measuring check measured (a baseline keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    /// The names of the values it captured for later checks (not the values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captured: Vec<String>,
}

/// What a measuring check saw: from its own samples, or from the server's metrics over the
/// check's window (counter and histogram deltas).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Observation {
    /// `samples` or `metrics`.
    pub source: String,
    /// Requests the figures are drawn from.
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Failed requests (samples), or 5xx answers (metrics).
    pub errors: Option<u64>,
    /// `errors / requests`, 0 to 1.
    pub error_ratio: Option<f64>,
    pub memory_bytes: Option<f64>,
    /// CPU seconds used per second of the window.
    pub cpu_ratio: Option<f64>,
    /// A counter went down during the window (the process restarted); its count since the
    /// restart is used.
    #[serde(default)]
    pub counter_reset: bool,
    pub window_ms: u64,
}

/// One line of the comparison with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Comparison {
    pub check: String,
    /// `p95_ms`, `error_ratio` or `memory_bytes`.
    pub measure: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// The largest current value that passes.
    pub limit: Option<f64>,
    /// `passed`, `failed` or `insufficient_data`.
    pub outcome: String,
}

/// The observations of a `baseline` step, by check name; also what `--save FILE` holds.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct VerifyBaseline {
    /// When it was taken (RFC 3339).
    pub taken: String,
    pub host: String,
    pub checks: std::collections::BTreeMap<String, Observation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched() -> Fetched {
        Fetched {
            url: "https://example.invalid/app-v1.2.3.tar.gz".into(),
            path: "/opt/app/staging/app-v1.2.3".into(),
            sha256: "ab".repeat(32),
            bytes: 1234,
            version: Some("v1.2.3".into()),
            verified: true,
            resumed: false,
            manifest_sha256: None,
        }
    }

    #[test]
    fn a_typed_result_goes_out_with_every_field_and_its_changed_flag() {
        let step = StepResult::typed(true, &fetched());
        assert!(step.changed);
        assert_eq!(
            step.result,
            serde_json::json!({
                "url": "https://example.invalid/app-v1.2.3.tar.gz",
                "path": "/opt/app/staging/app-v1.2.3",
                "sha256": "ab".repeat(32),
                "bytes": 1234,
                "version": "v1.2.3",
                "verified": true,
                "resumed": false,
            })
        );
        assert!(!StepResult::typed(false, &fetched()).changed);
    }

    #[test]
    fn a_typed_result_reads_back_as_it_was_written() {
        let written = StepResult::typed(false, &fetched()).result;
        let read: Fetched = serde_json::from_value(written).unwrap();
        assert_eq!(read, fetched());
    }

    #[test]
    fn a_result_missing_a_field_does_not_read_as_fetched() {
        let mut written = StepResult::typed(false, &fetched()).result;
        written.as_object_mut().unwrap().remove("sha256");
        let err = serde_json::from_value::<Fetched>(written).unwrap_err();
        assert!(err.to_string().contains("sha256"), "{err}");
    }

    fn waited() -> WaitHealthy {
        WaitHealthy {
            healthy: true,
            mode: WaitMode::Up,
            targets: vec![WaitTarget {
                target: "tcp 127.0.0.1:5432".into(),
                kind: TargetKind::Tcp,
                attempts: 2,
                passes: 1,
                passing: true,
                last_status: None,
                last_exit: None,
                last_error: None,
                last_latency_ms: Some(3),
                body_excerpt: None,
            }],
            rounds: 2,
            attempts: 2,
            elapsed_ms: 120,
            time_to_healthy_ms: Some(110),
            deadline_overrun_ms: 0,
            expect_version: None,
            process: None,
        }
    }

    #[test]
    fn a_wait_result_keeps_the_record_field_names_and_reads_back() {
        let written = StepResult::typed(false, &waited()).result;
        assert_eq!(
            written,
            serde_json::json!({
                "healthy": true, "mode": "up",
                "targets": [{
                    "target": "tcp 127.0.0.1:5432", "kind": "tcp", "attempts": 2, "passes": 1,
                    "passing": true, "last_status": null, "last_exit": null, "last_error": null,
                    "last_latency_ms": 3, "body_excerpt": null,
                }],
                "rounds": 2, "attempts": 2, "elapsed_ms": 120, "time_to_healthy_ms": 110,
                "deadline_overrun_ms": 0, "expect_version": null,
            })
        );
        assert_eq!(
            serde_json::from_value::<WaitHealthy>(written).unwrap(),
            waited()
        );
        assert_eq!(WaitHealthy::TOOL, "ugw-wait-healthy");
    }

    #[test]
    fn a_migration_result_keeps_the_record_field_names_and_reads_back() {
        let migrated = Migrated {
            db: "postgres://***@127.0.0.1:5432/app".into(),
            dir: "/srv/app/migrations".into(),
            phase: "pre".into(),
            applied: vec![AppliedMigration {
                version: 1,
                name: "users".into(),
                phase: "pre".into(),
                duration_ms: 7,
            }],
            pending: vec![PendingMigration {
                version: 2,
                name: "drop_name".into(),
                phase: "post".into(),
                checksum: "cd".repeat(32),
            }],
            lock_wait_ms: 3,
            warnings: vec![],
        };
        let written = StepResult::typed(true, &migrated).result;
        assert_eq!(
            written,
            serde_json::json!({
                "db": "postgres://***@127.0.0.1:5432/app", "dir": "/srv/app/migrations",
                "phase": "pre",
                "applied": [{"version": 1, "name": "users", "phase": "pre", "duration_ms": 7}],
                "pending": [{"version": 2, "name": "drop_name", "phase": "post", "checksum": "cd".repeat(32)}],
                "lock_wait_ms": 3, "warnings": [],
            })
        );
        assert_eq!(
            serde_json::from_value::<Migrated>(written).unwrap(),
            migrated
        );
        assert_eq!(Migrated::TOOL, "ugw-migrate");
    }

    #[test]
    fn a_swap_result_leaves_out_what_it_does_not_have_and_reads_back() {
        let swapped = Swapped {
            mode: "release".into(),
            root: Some("/srv/app".into()),
            previous: Some("1.0.0".into()),
            current: Some("1.1.0".into()),
            changed: true,
            ..Swapped::default()
        };
        let written = StepResult::typed(true, &swapped).result;
        assert_eq!(
            written,
            serde_json::json!({
                "mode": "release", "root": "/srv/app", "previous": "1.0.0", "current": "1.1.0",
                "pruned": [], "restarted": false, "changed": true,
            })
        );
        assert_eq!(serde_json::from_value::<Swapped>(written).unwrap(), swapped);
        assert_eq!(Swapped::TOOL, "ugw-swap");
    }

    #[test]
    fn drained_field_names_are_pinned() {
        let drained = Drained {
            method: DrainMethod::FlagFile,
            server: None,
            state_before: Some("absent".into()),
            state_after: Some("present".into()),
            inflight_start: Some(2),
            inflight_end: Some(0),
            readings: 5,
            waited_ms: 812,
            forced: false,
            changed: true,
            undo: false,
            escalated: None,
            sockets: vec![],
            states_before: vec![],
            flag_file: Some("/run/app/drain".into()),
            http_post: None,
            pid: None,
            // Left out of the record when not a --container stop.
            container_id: None,
            exit_code: None,
            inflight_source: Some("port 8080".into()),
        };
        let value = StepResult::typed(true, &drained).result;
        assert_eq!(
            value,
            serde_json::json!({
                "method": "flag_file", "server": null, "state_before": "absent",
                "state_after": "present", "inflight_start": 2, "inflight_end": 0,
                "readings": 5, "waited_ms": 812, "forced": false, "changed": true,
                "undo": false, "escalated": null, "sockets": [], "states_before": [],
                "flag_file": "/run/app/drain", "http_post": null, "pid": null,
                "inflight_source": "port 8080"
            })
        );
        assert_eq!(serde_json::from_value::<Drained>(value).unwrap(), drained);
    }
}
