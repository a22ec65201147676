//! Typed step results: what each tool leaves in its step's `result` for the tools after it.
//! One struct per tool, written with it and read back with it, so a field name is checked by
//! the compiler on both sides. Tools never import each other; they meet here.

use crate::cli::StepResult;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The result a tool writes in its step; `TOOL` is the tool's name, which is how a later tool
/// finds the step (`Record::last_result::<T>()`).
pub trait ToolResult: Serialize + DeserializeOwned {
    const TOOL: &'static str;
}

impl StepResult {
    /// The `StepResult` a tool's `run` returns for a typed result.
    #[must_use]
    pub fn typed<T: ToolResult>(changed: bool, result: &T) -> Self {
        // A struct of strings, numbers and booleans always serialises; only a map with
        // non-string keys could fail, and no result type has one.
        let value = serde_json::to_value(result).expect("a tool result serialises to JSON");
        if changed {
            StepResult::changed(value)
        } else {
            StepResult::unchanged(value)
        }
    }
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
    /// The release label (`--version`, or parsed from the file name); `None` when neither.
    pub version: Option<String>,
    /// Whether the digest (or signature) was checked; false only with `--no-verify`.
    pub verified: bool,
    /// Whether the download continued an earlier partial one.
    pub resumed: bool,
}

impl ToolResult for Fetched {
    const TOOL: &'static str = "ugw-fetch";
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
}
