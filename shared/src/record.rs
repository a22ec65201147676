//! The upgrade record that flows through the pipe: parsing with its limits, the typed
//! lookup of earlier steps, appending a step and recomputing `ok`.

use crate::error::{Error, Result, exit};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The record format's major version; a record with another major is refused.
pub const MAJOR: u64 = 1;
/// Records larger than this are refused (nothing legitimate gets near it).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub ugw: u64,
    pub run: String,
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Fields written by newer tools, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
    Interrupted,
    /// A status word from a newer tool; it neither fails nor passes the run.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepError {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub tool: String,
    #[serde(default)]
    pub tool_version: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub started: String,
    #[serde(default)]
    pub elapsed_ms: u64,
    pub status: Status,
    #[serde(default)]
    pub exit: i32,
    #[serde(default)]
    pub changed: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Step {
    /// Whether this step makes the run fail.
    #[must_use]
    pub fn failed(&self) -> bool {
        matches!(self.status, Status::Failed | Status::Interrupted)
    }
}

impl Record {
    #[must_use]
    pub fn new(run: String) -> Self {
        Record {
            ugw: MAJOR,
            run,
            ok: true,
            steps: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Parse a record from bytes, with the checks every reader needs: the size cap, a JSON
    /// object, the known major version. `ok` is recomputed, never trusted.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BYTES {
            return Err(Error::bad_record(format!(
                "the record is larger than {} MiB; refusing it",
                MAX_BYTES / (1024 * 1024)
            )));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::bad_record(format!(
                "the input is not valid JSON ({e}): '{}'",
                crate::scrub::excerpt(bytes, 60)
            ))
        })?;
        let Value::Object(object) = &value else {
            return Err(Error::bad_record(
                "the input is JSON but not an object, so not a ugw record",
            ));
        };
        match object.get("ugw").and_then(Value::as_u64) {
            Some(MAJOR) => {}
            Some(other) => {
                return Err(Error::bad_record(format!(
                    "the record is of format version {other}; this tool reads version {MAJOR} (upgrade ugw on this host)"
                )));
            }
            None => {
                return Err(Error::bad_record(
                    "the JSON object has no numeric \"ugw\" field, so it is not a ugw record",
                ));
            }
        }
        let mut record: Record = serde_json::from_value(value)
            .map_err(|e| Error::bad_record(format!("the record is malformed: {e}")))?;
        record.recompute_ok();
        Ok(record)
    }

    pub fn recompute_ok(&mut self) {
        self.ok = !self.steps.iter().any(Step::failed);
    }

    /// The step that made the run fail, if any: the last failed or interrupted one.
    #[must_use]
    pub fn failure(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.failed())
    }

    /// The exit code a tool that skips because of this record ends with.
    #[must_use]
    pub fn failure_exit(&self) -> i32 {
        // Only 1..=255 survive as a process exit code; 256 would read as success.
        match self.failure().map(|s| s.exit) {
            Some(code) if (1..=255).contains(&code) => code,
            _ => exit::FAILED,
        }
    }

    /// The last step of `tool` that succeeded for real (status ok, not a dry run).
    #[must_use]
    pub fn last_ok(&self, tool: &str) -> Option<&Step> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.tool == tool && s.status == Status::Ok && !s.dry_run)
    }

    /// The typed result of the last real, successful step of `tool`. A result that does not
    /// have the expected shape is a bad record, not a silent `None`.
    pub fn last_result<T: DeserializeOwned>(&self, tool: &str) -> Result<Option<T>> {
        let Some(step) = self.last_ok(tool) else {
            return Ok(None);
        };
        serde_json::from_value(step.result.clone())
            .map(Some)
            .map_err(|e| {
                Error::bad_record(format!(
                    "the result of the earlier {tool} step is malformed: {e}"
                ))
            })
    }

    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
        self.recompute_ok();
    }
}

/// What each tool leaves in its step's `result` that other tools read. Tools never import
/// each other; they meet here.
pub mod results {
    use serde::Deserialize;

    /// The part of an `ugw-fetch` result that later steps use.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Fetched {
        #[serde(default)]
        pub path: Option<String>,
        #[serde(default)]
        pub sha256: Option<String>,
        #[serde(default)]
        pub version: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(tool: &str, status: Status, exit: i32) -> Step {
        Step {
            tool: tool.into(),
            tool_version: "0".into(),
            host: "h".into(),
            started: String::new(),
            elapsed_ms: 0,
            status,
            exit,
            changed: false,
            dry_run: false,
            result: serde_json::json!({"version": "v2"}),
            error: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn ok_is_recomputed_not_trusted() {
        let text =
            br#"{"ugw":1,"run":"r","ok":true,"steps":[{"tool":"a","status":"failed","exit":4}]}"#;
        let record = Record::parse(text).unwrap();
        assert!(!record.ok);
        assert_eq!(record.failure_exit(), 4);
        let text = br#"{"ugw":1,"run":"r","steps":[{"tool":"a","status":"failed","exit":256}]}"#;
        assert_eq!(Record::parse(text).unwrap().failure_exit(), 1);
    }

    #[test]
    fn unknown_fields_pass_through() {
        let text = br#"{"ugw":1,"run":"r","ok":true,"future":[1],"steps":[{"tool":"a","status":"ok","x":{"y":2}}]}"#;
        let record = Record::parse(text).unwrap();
        let out = serde_json::to_string(&record).unwrap();
        assert!(out.contains(r#""future":[1]"#), "{out}");
        assert!(out.contains(r#""x":{"y":2}"#), "{out}");
    }

    #[test]
    fn unknown_major_and_non_records_are_refused() {
        assert!(
            Record::parse(br#"{"ugw":2,"run":"r","steps":[]}"#)
                .unwrap_err()
                .message
                .contains("version 2")
        );
        assert!(Record::parse(b"[1]").is_err());
        assert!(Record::parse(b"{\"a\":1}").is_err());
        assert!(Record::parse(b"{not json").is_err());
    }

    #[test]
    fn last_ok_skips_failed_and_dry_runs() {
        let mut record = Record::new("r".into());
        let mut dry = step("ugw-fetch", Status::Ok, 0);
        dry.dry_run = true;
        record.push(step("ugw-fetch", Status::Ok, 0));
        record.push(dry);
        record.push(step("ugw-fetch", Status::Failed, 1));
        let found: results::Fetched = record.last_result("ugw-fetch").unwrap().unwrap();
        assert_eq!(found.version.as_deref(), Some("v2"));
        assert!(!record.ok);
        assert!(record.last_ok("ugw-swap").is_none());
    }
}
