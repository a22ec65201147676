//! The registry of ugw tools: one line per tool. xtask generates the man pages and
//! completions of exactly these; each has a three-line binary in `src/bin/`.

use ugw_shared::cli::Tool;

/// Every tool, in the order the overview page lists them.
#[must_use]
pub fn tools() -> Vec<Tool> {
    vec![ugw_wait_healthy::tool(), ugw_backup::tool()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_declared_once_and_well_formed() {
        let tools = tools();
        let mut names: Vec<_> = tools.iter().map(|t| t.name().to_string()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), tools.len(), "one line per tool: {names:?}");
        for tool in &tools {
            tool.command().debug_assert();
        }
    }

    #[test]
    fn wait_healthy_never_runs_after_a_failure_and_waits_2m_by_default() {
        let tool = ugw_wait_healthy::tool();
        let matches =
            tool.command()
                .get_matches_from(["ugw-wait-healthy", "--cmd", "true", "--always"]);
        assert!(!(tool.runs_after_failure)(&matches));
        assert_eq!(
            matches.get_one::<std::time::Duration>("timeout"),
            Some(&std::time::Duration::from_secs(120))
        );
    }
}
