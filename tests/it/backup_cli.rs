//! ugw-backup's command line as a whole: every subcommand answers `--version` / `-V` with the
//! tool's version (issue 21 item 14), as the top level does, instead of a usage error.

use crate::kit;

#[test]
fn every_subcommand_answers_version_with_the_tools_version() {
    for subcommand in ["create", "verify", "restore", "list", "prune"] {
        for flag in ["--version", "-V"] {
            let mut cmd = kit::tool("ugw-backup");
            cmd.args([subcommand, flag]);
            let out = kit::run(cmd);
            assert_eq!(
                out.code, 0,
                "ugw-backup {subcommand} {flag}: {}{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stdout.starts_with("ugw-backup")
                    && out.stdout.trim_end().ends_with(env!("CARGO_PKG_VERSION")),
                "ugw-backup {subcommand} {flag} prints the tool's version: {:?}",
                out.stdout
            );
            assert!(
                !out.stdout.contains("\"steps\""),
                "no usage-error record: {}",
                out.stdout
            );
        }
    }
}
