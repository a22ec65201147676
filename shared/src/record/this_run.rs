//! The trust rule's first half (ugw(7), WHAT A TOOL TRUSTS): a tool decides what to change
//! only from steps of this run written on this host. The record is input: it can be stale,
//! from another host, concatenated from two runs or forged, so every lookup of an earlier step
//! goes through this view, and a step of another run or host is never found by it (only
//! `left_out` names one, so that a tool can say why it found nothing).
//!
//! The second half, that what a step names is what the tool is about to touch (an artifact
//! re-hashed, a balancer and server matched, an archive's manifest read), is each tool's own.

use super::{Record, Status, Step};
use crate::error::{Error, Result};
use crate::results::ToolResult;

/// The earlier steps of `record` that belong to its run and to `host`.
#[derive(Clone, Copy)]
pub struct ThisRun<'a> {
    record: &'a Record,
    host: &'a str,
}

impl<'a> ThisRun<'a> {
    pub(super) fn new(record: &'a Record, host: &'a str) -> Self {
        ThisRun { record, host }
    }

    /// The run these steps belong to.
    #[must_use]
    pub fn run(&self) -> &'a str {
        &self.record.run
    }

    /// The host these steps were written on.
    #[must_use]
    pub fn host(&self) -> &'a str {
        self.host
    }

    fn ours(&self, step: &Step) -> bool {
        step.belongs_to(&self.record.run, self.host)
    }

    /// Every real step (not a dry run) of `tool` in this run on this host, newest first, any
    /// status: an undo looks through all of them for the one that names what it undoes.
    pub fn steps_newest_first(&self, tool: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        let record = self.record;
        let this = *self;
        record
            .steps
            .heads()
            .enumerate()
            .rev()
            .filter(move |(_, h)| h.tool == tool && !h.dry_run)
            .filter_map(move |(index, _)| record.steps.get(index))
            .filter(move |step| this.ours(step))
    }

    /// The newest real step of `tool` that this view leaves out (another run's or host's), to
    /// say why nothing was found: "the ugw-fetch step was written on node2".
    #[must_use]
    fn foreign(&self, tool: &str) -> Option<&'a Step> {
        let record = self.record;
        let (index, _) = record.steps.heads().enumerate().rfind(|(index, h)| {
            h.tool == tool && !h.dry_run && record.steps.get(*index).is_some_and(|s| !self.ours(s))
        })?;
        record.steps.get(index)
    }

    /// Why a step of `tool` found by `foreign` is not acted on, as a clause for a message.
    #[must_use]
    fn why_foreign(&self, step: &Step) -> String {
        if step.run.is_empty() {
            format!(
                "the {} step in the record names no run (an older ugw, or a hand-made step)",
                step.tool
            )
        } else if step.run != self.record.run {
            format!(
                "the {} step in the record belongs to run {}, not to this record's run {}",
                step.tool, step.run, self.record.run
            )
        } else {
            format!(
                "the {} step in the record was written on host {:?}, not on this host ({:?})",
                step.tool, step.host, self.host
            )
        }
    }

    /// Why the newest step of `tool` in the record is not this view's, as a clause for a
    /// message, or `None` when the record holds no such step of another run or host.
    #[must_use]
    pub fn left_out(&self, tool: &str) -> Option<String> {
        self.foreign(tool).map(|step| self.why_foreign(step))
    }

    /// The last step of `tool` with any of these statuses that really ran, in this run on this
    /// host (a step that succeeded, or one that failed after it changed something).
    #[must_use]
    pub fn last_step_among(&self, tool: &'a str, statuses: &[Status]) -> Option<&'a Step> {
        self.steps_newest_first(tool)
            .find(|step| statuses.contains(&step.status))
    }

    /// The last step of `tool` with this status that really ran: `Ok` for what a tool
    /// produced, `Failed` for what a rollback must undo.
    #[must_use]
    pub fn last_step(&self, tool: &'a str, status: Status) -> Option<&'a Step> {
        self.last_step_among(tool, &[status])
    }

    /// The last step of `tool` that succeeded for real (status ok, not a dry run).
    #[must_use]
    pub fn last_ok(&self, tool: &'a str) -> Option<&'a Step> {
        self.last_step(tool, Status::Ok)
    }

    /// Every real step of the tool that writes `T` whose result has `T`'s shape, newest first,
    /// with its status: a rollback looks for the switch it must take back.
    #[must_use]
    pub fn results_newest_first<T: ToolResult>(&self) -> Vec<(Status, T)> {
        self.steps_newest_first(T::TOOL)
            .filter_map(|step| Some((step.status, T::deserialize(&step.result).ok()?)))
            .collect()
    }

    /// The result of the last real, successful step of the tool that writes `T`.
    pub fn last_result<T: ToolResult>(&self) -> Result<Option<T>> {
        self.last_result_with(Status::Ok)
    }

    /// The result of the last real step with this status of the tool that writes `T` (a
    /// rollback reads the result of a *failed* swap). A step without a result is `None`; a
    /// result that does not have the shape of `T` is a bad record, not a silent `None`.
    pub fn last_result_with<T: ToolResult>(&self, status: Status) -> Result<Option<T>> {
        self.last_result_among(&[status])
    }

    /// The result of the last real step with any of these statuses of the tool that writes `T`.
    pub fn last_result_among<T: ToolResult>(&self, statuses: &[Status]) -> Result<Option<T>> {
        let Some(step) = self.last_step_among(T::TOOL, statuses) else {
            return Ok(None);
        };
        if step.result.is_null() {
            return Ok(None);
        }
        T::deserialize(&step.result).map(Some).map_err(|e| {
            Error::bad_record(format!(
                "the result of the earlier {} step is malformed: {e}",
                T::TOOL
            ))
        })
    }

    /// In a dry run only: the result of this run's newest successful step of the tool that
    /// writes `T` on this host when that step was itself a dry run (what it would have
    /// produced), so that a whole pipeline can be dry-run. `None` when `dry_run` is false,
    /// whatever the record holds: a dry-run step never lets a real run act on it. `None` too
    /// when the newest such step really ran (`last_result` finds that one).
    pub fn dry_run_result<T: ToolResult>(&self, dry_run: bool) -> Result<Option<T>> {
        if !dry_run {
            return Ok(None);
        }
        let record = self.record;
        let newest = record
            .steps
            .heads()
            .enumerate()
            .rev()
            .filter(|(_, h)| h.tool == T::TOOL && h.status == Status::Ok)
            .filter_map(|(index, _)| record.steps.get(index))
            .find(|step| self.ours(step));
        let Some(step) = newest.filter(|step| step.dry_run && !step.result.is_null()) else {
            return Ok(None);
        };
        T::deserialize(&step.result).map(Some).map_err(|e| {
            Error::bad_record(format!(
                "the result of the earlier dry-run {} step is malformed: {e}",
                T::TOOL
            ))
        })
    }

    /// A value a flag may leave out: the flag's (which always wins), else the one `pick`
    /// finds in the result of this run's last real, successful step of the tool that writes
    /// `T` (`--expect-version` from `ugw-fetch`'s `version`). Neither is a usage error naming
    /// the flag and the tool (and, when the record has such a step of another run or host,
    /// why it was not taken); except in a dry run, where the tool before may have been a dry
    /// run too and the value is simply not known yet (`None`).
    pub fn flag_or_earlier<T: ToolResult, V>(
        &self,
        flag: &str,
        given: Option<V>,
        dry_run: bool,
        pick: impl FnOnce(T) -> Option<V>,
    ) -> Result<Option<V>> {
        if given.is_some() {
            return Ok(given);
        }
        match self.last_result::<T>()?.and_then(pick) {
            Some(value) => Ok(Some(value)),
            None if dry_run => Ok(None),
            None => {
                let tool = T::TOOL;
                let foreign = self
                    .left_out(tool)
                    .map(|why| format!(" ({why}, so it is not used)"))
                    .unwrap_or_default();
                Err(Error::usage(format!(
                    "{flag} has no value: none was given, and no earlier successful {tool} step \
                     of this run on this host has one{foreign}; give it ({flag} VALUE) or run \
                     {tool} before this step"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::step;
    use super::super::{Record, Status};
    use crate::results::Fetched;
    use serde_json::Value;

    fn fetched(version: &str) -> Value {
        serde_json::json!({"url": "https://x.invalid/a", "path": "/opt/a", "sha256": "00",
                           "bytes": 1, "version": version, "verified": true, "resumed": false})
    }

    /// Steps of run "r" on host "h", as a parsed record: `{"tool":…}` members of each.
    fn record_of(steps: &[String]) -> Record {
        let steps: Vec<String> = steps
            .iter()
            .map(|s| format!(r#"{{"run":"r","host":"h",{s}}}"#))
            .collect();
        let text = format!(r#"{{"ugw":1,"run":"r","steps":[{}]}}"#, steps.join(","));
        Record::parse(text.as_bytes()).unwrap()
    }
    #[test]
    fn last_ok_skips_failed_and_dry_runs() {
        let mut record = Record::new("r".into());
        let mut dry = step("ugw-fetch", Status::Ok, 0);
        dry.dry_run = true;
        let mut real = step("ugw-fetch", Status::Ok, 0);
        real.result = fetched("v2");
        record.push(real);
        record.push(dry);
        record.push(step("ugw-fetch", Status::Failed, 1));
        let found: Fetched = record.this_run("h").last_result().unwrap().unwrap();
        assert_eq!(found.version.as_deref(), Some("v2"));
        assert!(!record.ok);
        assert!(record.this_run("h").last_ok("ugw-swap").is_none());
    }

    #[test]
    fn a_dry_run_step_is_found_only_by_a_dry_run_and_only_when_newest() {
        use crate::results::FetchPlanned;
        let planned = serde_json::json!({"url": "https://x.invalid/a", "path": "/opt/a",
                                         "version": "v3", "sha256": null, "fetched": false});
        let mut record = Record::new("r".into());
        let mut real = step("ugw-fetch", Status::Ok, 0);
        real.result = fetched("v2");
        record.push(real);
        let mut dry = step("ugw-fetch", Status::Ok, 0);
        dry.dry_run = true;
        dry.result = planned;
        record.push(dry);
        let view = record.this_run("h");
        let found: Option<FetchPlanned> = view.dry_run_result(true).unwrap();
        assert_eq!(found.unwrap().version.as_deref(), Some("v3"));
        assert_eq!(
            view.dry_run_result::<FetchPlanned>(false).unwrap(),
            None,
            "a real run"
        );
        let real: Fetched = view.last_result().unwrap().unwrap();
        assert_eq!(real.version.as_deref(), Some("v2"), "never the dry run's");
        // Another host's dry run is not this run's.
        assert_eq!(
            record
                .this_run("h2")
                .dry_run_result::<FetchPlanned>(true)
                .unwrap(),
            None
        );
        // A real step after the dry run: that one is the newest, and last_result finds it.
        let mut again = step("ugw-fetch", Status::Ok, 0);
        again.result = fetched("v4");
        record.push(again);
        let view = record.this_run("h");
        assert_eq!(view.dry_run_result::<FetchPlanned>(true).unwrap(), None);
    }

    #[test]
    fn a_failed_step_of_a_tool_is_found_by_its_status() {
        let text = format!(
            r#"{{"ugw":1,"run":"r","steps":[{{"run":"r","host":"h","tool":"ugw-fetch","status":"ok","result":{}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"failed","exit":1,"result":{}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"interrupted","exit":130}}]}}"#,
            fetched("v1"),
            fetched("v2")
        );
        let record = Record::parse(text.as_bytes()).unwrap();
        let failed: Fetched = record
            .this_run("h")
            .last_result_with(Status::Failed)
            .unwrap()
            .unwrap();
        assert_eq!(failed.version.as_deref(), Some("v2"));
        let ok: Fetched = record.this_run("h").last_result().unwrap().unwrap();
        assert_eq!(ok.version.as_deref(), Some("v1"));
        // An interrupted step without a result: found, but no result to read.
        assert_eq!(
            record
                .this_run("h")
                .last_step("ugw-fetch", Status::Interrupted)
                .unwrap()
                .exit,
            130
        );
        assert!(
            record
                .this_run("h")
                .last_result_with::<Fetched>(Status::Interrupted)
                .unwrap()
                .is_none()
        );
        assert!(
            record
                .this_run("h")
                .last_result_with::<Fetched>(Status::Skipped)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn results_newest_first_are_every_real_step_of_the_tool_with_its_status() {
        let text = format!(
            r#"{{"ugw":1,"run":"r","steps":[{{"run":"r","host":"h","tool":"ugw-fetch","status":"ok","result":{}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"ok","dry_run":true,"result":{}}},{{"run":"r","host":"h","tool":"ugw-swap","status":"ok","result":{{}}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"failed","exit":1,"result":{}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"skipped","exit":1}}]}}"#,
            fetched("v1"),
            fetched("dry"),
            fetched("v2")
        );
        let record = Record::parse(text.as_bytes()).unwrap();
        let found: Vec<(Status, Option<String>)> = record
            .this_run("h")
            .results_newest_first::<Fetched>()
            .into_iter()
            .map(|(status, r)| (status, r.version))
            .collect();
        assert_eq!(
            found,
            [
                (Status::Failed, Some("v2".to_string())),
                (Status::Ok, Some("v1".to_string()))
            ]
        );
    }

    #[test]
    fn the_last_step_among_statuses_is_the_latest_of_any_of_them() {
        let text = format!(
            r#"{{"ugw":1,"run":"r","steps":[{{"run":"r","host":"h","tool":"ugw-fetch","status":"ok","result":{}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"failed","exit":1,"result":{}}},{{"run":"r","host":"h","tool":"ugw-fetch","status":"skipped","exit":1}}]}}"#,
            fetched("v1"),
            fetched("v2")
        );
        let record = Record::parse(text.as_bytes()).unwrap();
        let both: Fetched = record
            .this_run("h")
            .last_result_among(&[Status::Ok, Status::Failed])
            .unwrap()
            .unwrap();
        assert_eq!(both.version.as_deref(), Some("v2"));
        let ok: Fetched = record
            .this_run("h")
            .last_result_among(&[Status::Ok])
            .unwrap()
            .unwrap();
        assert_eq!(ok.version.as_deref(), Some("v1"));
        assert_eq!(
            record
                .this_run("h")
                .last_step_among("ugw-fetch", &[Status::Skipped, Status::Ok])
                .unwrap()
                .status,
            Status::Skipped
        );
    }

    #[test]
    fn a_result_of_the_wrong_shape_is_a_bad_record() {
        let text = br#"{"ugw":1,"run":"r","steps":[{"run":"r","host":"h","tool":"ugw-fetch","status":"ok","result":{"version":"v1"}}]}"#;
        let err = Record::parse(text)
            .unwrap()
            .this_run("h")
            .last_result::<Fetched>()
            .unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::BadRecord);
        assert!(
            err.message.contains("earlier ugw-fetch step is malformed"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_flag_wins_over_the_record_which_wins_over_a_usage_error() {
        let mut record = Record::new("r".into());
        let version = |r: &Record, given: Option<&str>, dry_run: bool| {
            r.this_run("h").flag_or_earlier(
                "--expect-version",
                given.map(String::from),
                dry_run,
                |f: Fetched| f.version,
            )
        };
        let err = version(&record, None, false).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Usage);
        assert!(
            err.message.contains("--expect-version") && err.message.contains("ugw-fetch"),
            "{}",
            err.message
        );
        assert_eq!(
            version(&record, None, true).unwrap(),
            None,
            "unknown in a dry run"
        );
        let mut fetch = step("ugw-fetch", Status::Ok, 0);
        fetch.result = fetched("v3");
        record.push(fetch);
        assert_eq!(
            version(&record, None, false).unwrap().as_deref(),
            Some("v3")
        );
        assert_eq!(
            version(&record, Some("v9"), false).unwrap().as_deref(),
            Some("v9")
        );
        // A fetch step without a version does not give one.
        let mut fetch = step("ugw-fetch", Status::Ok, 0);
        fetch.result = fetched("v3");
        fetch.result["version"] = Value::Null;
        record.push(fetch);
        assert!(version(&record, None, false).is_err());
    }

    #[test]
    fn a_step_of_another_run_or_host_or_without_a_run_is_never_found() {
        let own = format!(
            r#""tool":"ugw-fetch","status":"ok","result":{}"#,
            fetched("v1")
        );
        let record = record_of(&[own]);
        let found: Fetched = record.this_run("h").last_result().unwrap().unwrap();
        assert_eq!(found.version.as_deref(), Some("v1"));
        assert!(
            record
                .this_run("h2")
                .last_result::<Fetched>()
                .unwrap()
                .is_none()
        );

        let text = |run: &str, host: &str| {
            format!(
                r#"{{"ugw":1,"run":"r","steps":[{{"tool":"ugw-fetch","run":"{run}","host":"{host}","status":"ok","result":{}}}]}}"#,
                fetched("v9")
            )
        };
        for (run, host, why) in [
            ("yesterday", "h", "belongs to run yesterday"),
            ("r", "node2", "written on host \"node2\""),
            ("", "h", "names no run"),
        ] {
            let record = Record::parse(text(run, host).as_bytes()).unwrap();
            let this = record.this_run("h");
            assert!(
                this.last_result::<Fetched>().unwrap().is_none(),
                "{run}/{host}"
            );
            assert!(this.results_newest_first::<Fetched>().is_empty());
            assert!(this.last_ok("ugw-fetch").is_none());
            assert_eq!(this.steps_newest_first("ugw-fetch").count(), 0);
            let foreign = this.foreign("ugw-fetch").unwrap();
            assert!(
                this.why_foreign(foreign).contains(why),
                "{}",
                this.why_foreign(foreign)
            );
            let err = this
                .flag_or_earlier("--expect-version", None::<String>, false, |f: Fetched| {
                    f.version
                })
                .unwrap_err();
            assert!(err.message.contains(why), "{}", err.message);
        }
    }

    #[test]
    fn steps_newest_first_are_this_runs_real_steps_of_the_tool_in_any_status() {
        let record = record_of(&[
            r#""tool":"ugw-drain","status":"interrupted","exit":143"#.to_string(),
            r#""tool":"ugw-drain","status":"ok","dry_run":true"#.to_string(),
            r#""tool":"ugw-swap","status":"ok""#.to_string(),
            r#""tool":"ugw-drain","status":"failed","exit":1"#.to_string(),
        ]);
        let statuses: Vec<Status> = record
            .this_run("h")
            .steps_newest_first("ugw-drain")
            .map(|s| s.status)
            .collect();
        assert_eq!(statuses, [Status::Failed, Status::Interrupted]);
    }
}
