//! The registry of ugw tools: one line per tool. xtask generates the man pages and
//! completions of exactly these; each has a three-line binary in `src/bin/`.
#![forbid(unsafe_code)]

use ugw_shared::cli::Tool;

/// Every tool, in the order the overview page lists them.
#[must_use]
pub fn tools() -> Vec<Tool> {
    vec![
        ugw_backup::tool(),
        ugw_fetch::tool(),
        ugw_swap::tool(),
        ugw_drain::tool(),
        ugw_migrate::tool(),
        ugw_wait_healthy::tool(),
        ugw_verify::tool(),
    ]
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
    fn src_bin_holds_one_binary_for_each_tool_of_the_registry_and_no_other() {
        let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
        let mut binaries: Vec<String> = std::fs::read_dir(&bin)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        binaries.sort();
        let mut registered: Vec<String> = tools().iter().map(|t| t.name().to_string()).collect();
        registered.sort();
        assert_eq!(binaries, registered, "src/bin/ and tools() disagree");
        for name in &binaries {
            let source = std::fs::read_to_string(bin.join(format!("{name}.rs"))).unwrap();
            let crate_name = name.replace('-', "_");
            assert!(
                source.contains(&format!("run_tool({crate_name}::tool())")),
                "src/bin/{name}.rs runs another tool than {name}:\n{source}"
            );
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

    #[test]
    fn swap_runs_after_a_failure_only_to_roll_back_or_report_and_fetch_never() {
        let swap = ugw_swap::tool();
        let parse = |args: &[&str]| swap.command().get_matches_from(args);
        assert!((swap.runs_after_failure)(&parse(&[
            "ugw-swap",
            "--root",
            "/r",
            "--rollback"
        ])));
        assert!((swap.runs_after_failure)(&parse(&[
            "ugw-swap", "status", "--root", "/r"
        ])));
        assert!(!(swap.runs_after_failure)(&parse(&[
            "ugw-swap", "--root", "/r"
        ])));
        let fetch = ugw_fetch::tool();
        let matches = fetch.command().get_matches_from([
            "ugw-fetch",
            "--url",
            "http://h/a",
            "--dest",
            "d",
            "--no-verify",
        ]);
        assert!(!(fetch.runs_after_failure)(&matches));
        assert_eq!(
            matches.get_one::<std::time::Duration>("timeout"),
            Some(&std::time::Duration::from_secs(600))
        );
    }
}
