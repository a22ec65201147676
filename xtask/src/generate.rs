//! Everything `xtask` generates, in memory: the man pages and the shell completions, as
//! (path relative to the workspace root, bytes). `man` writes the list out, `check` and the
//! test compare it with the files on disk.

use crate::man;
use clap::Command;
use clap_complete::{Generator, Shell};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the man pages go, relative to the workspace root.
pub const MAN_DIR: &str = "man";
/// Where the completions go, relative to the workspace root.
pub const COMPLETIONS_DIR: &str = "completions";

/// The shells completions are generated for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// One generated file: its path relative to the workspace root, and its contents.
pub type File = (PathBuf, Vec<u8>);

/// Everything, for the real tools.
pub fn generate() -> Result<Vec<File>, String> {
    // The registry in src/lib.rs; each command as parsed, its default --timeout included.
    let tools: Vec<Command> = ugw::tools()
        .iter()
        .map(ugw_shared::cli::Tool::command)
        .collect();
    generate_for(&tools)
}

/// Everything, for the given tools: their pages (one per subcommand too), the overview
/// page `ugw.7`, and their completions. Sorted by path, so the output is deterministic.
pub fn generate_for(tools: &[Command]) -> Result<Vec<File>, String> {
    let mut files = Vec::new();
    for tool in tools {
        for (name, page) in man::tool_pages(tool, tools)? {
            files.push((Path::new(MAN_DIR).join(name), page));
        }
        for shell in SHELLS {
            let mut command = tool.clone();
            let name = command.get_name().to_string();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, &name, &mut out);
            files.push((Path::new(COMPLETIONS_DIR).join(shell.file_name(&name)), out));
        }
    }
    files.push((Path::new(MAN_DIR).join("ugw.7"), man::overview(tools)?));
    files.sort();
    if let Some(pair) = files.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(format!(
            "two generated files share the path {}",
            pair[0].0.display()
        ));
    }
    Ok(files)
}

/// Whether a file found in `man/` or `completions/` looks like one of ours, so that one no
/// tool produces any more (a renamed tool or subcommand) is reported and removed.
#[must_use]
pub fn looks_generated(relative: &Path) -> bool {
    let (Some(dir), Some(name)) = (
        relative.parent(),
        relative.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    if dir == Path::new(MAN_DIR) {
        let (stem, section) = name.rsplit_once('.').unwrap_or((name, ""));
        (stem == "ugw" || stem.starts_with("ugw-"))
            && section.len() == 1
            && section.as_bytes()[0].is_ascii_digit()
    } else if dir == Path::new(COMPLETIONS_DIR) {
        name.starts_with("_ugw-")
            || (name.starts_with("ugw-")
                && Path::new(name)
                    .extension()
                    .is_some_and(|e| e == "bash" || e == "fish"))
    } else {
        false
    }
}

/// How the files on disk under `root` differ from `files`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Generated files whose disk copy differs.
    pub stale: Vec<PathBuf>,
    /// Generated files not on disk.
    pub missing: Vec<PathBuf>,
    /// Files on disk that look generated but that nothing generates any more.
    pub extra: Vec<PathBuf>,
}

impl Drift {
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.stale.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }

    /// One line per file, for the operator.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for (label, paths) in [
            ("stale", &self.stale),
            ("missing", &self.missing),
            ("extra", &self.extra),
        ] {
            for path in paths {
                let _ = writeln!(text, "{label}: {}", path.display());
            }
        }
        text
    }
}

/// Compare `files` with what is on disk under `root`.
pub fn compare(root: &Path, files: &[File]) -> Result<Drift, String> {
    let mut drift = Drift::default();
    for (path, contents) in files {
        match std::fs::read(root.join(path)) {
            Ok(on_disk) if on_disk == *contents => {}
            Ok(_) => drift.stale.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => drift.missing.push(path.clone()),
            Err(e) => return Err(format!("{}: {e}", root.join(path).display())),
        }
    }
    drift.extra = extras(root, files)?;
    Ok(drift)
}

/// Files under `man/` and `completions/` that look generated but are not in `files`.
pub fn extras(root: &Path, files: &[File]) -> Result<Vec<PathBuf>, String> {
    let mut extra = Vec::new();
    for dir in [MAN_DIR, COMPLETIONS_DIR] {
        let entries = match std::fs::read_dir(root.join(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{}: {e}", root.join(dir).display())),
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", root.join(dir).display()))?;
            let relative = Path::new(dir).join(entry.file_name());
            if looks_generated(&relative) && !files.iter().any(|(path, _)| *path == relative) {
                extra.push(relative);
            }
        }
    }
    extra.sort();
    Ok(extra)
}

/// Write `files` under `root` (only those that changed) and remove the extras. Returns the
/// paths written and the paths removed.
pub fn write(root: &Path, files: &[File]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    let mut written = Vec::new();
    for (path, contents) in files {
        let full = root.join(path);
        if std::fs::read(&full).is_ok_and(|on_disk| on_disk == *contents) {
            continue;
        }
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&full, contents).map_err(|e| format!("{}: {e}", full.display()))?;
        written.push(path.clone());
    }
    let removed = extras(root, files)?;
    for path in &removed {
        let full = root.join(path);
        std::fs::remove_file(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    }
    Ok((written, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Arg;

    fn fake_tool() -> Command {
        ugw_shared::tool_command("ugw-fake", "Do one fake thing")
            .after_long_help("Examples:\n  # Fake it:\n  ugw-fake --flag\n")
            .arg(
                Arg::new("flag")
                    .long("flag")
                    .action(clap::ArgAction::SetTrue)
                    .help("A flag"),
            )
    }

    fn fake_with_subcommands() -> Command {
        ugw_shared::tool_command("ugw-multi", "Several jobs")
            .after_long_help("Examples:\n  ugw-multi one\n")
            .subcommand(Command::new("one").about("The first job"))
            .subcommand(
                Command::new("two")
                    .about("The second job")
                    .after_long_help("Examples:\n  ugw-multi two\n"),
            )
    }

    #[test]
    fn paths_are_the_expected_ones() {
        let files = generate_for(&[fake_tool(), fake_with_subcommands()]).unwrap();
        let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "completions/_ugw-fake",
                "completions/_ugw-multi",
                "completions/ugw-fake.bash",
                "completions/ugw-fake.fish",
                "completions/ugw-multi.bash",
                "completions/ugw-multi.fish",
                "man/ugw-fake.1",
                "man/ugw-multi-one.1",
                "man/ugw-multi-two.1",
                "man/ugw-multi.1",
                "man/ugw.7",
            ]
        );
    }

    #[test]
    fn generation_is_deterministic_and_has_no_absolute_paths() {
        let tools = [fake_tool(), fake_with_subcommands()];
        let first = generate_for(&tools).unwrap();
        assert_eq!(first, generate_for(&tools).unwrap());
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        for (path, contents) in &first {
            let text = String::from_utf8_lossy(contents);
            assert!(
                !text.contains(env!("CARGO_MANIFEST_DIR")),
                "{} holds an absolute path",
                path.display()
            );
            assert!(
                !text.contains(root),
                "{} holds an absolute path",
                path.display()
            );
        }
    }

    #[test]
    fn looks_generated_knows_our_files() {
        for yes in [
            "man/ugw.7",
            "man/ugw-x.1",
            "man/ugw-x-y.1",
            "completions/_ugw-x",
            "completions/ugw-x.bash",
            "completions/ugw-x.fish",
        ] {
            assert!(looks_generated(Path::new(yes)), "{yes}");
        }
        for no in [
            "man/README.md",
            "man/other.1",
            "completions/README",
            "ugw-x.1",
            "src/ugw-x.bash",
            "man/ugw-x.1.orig",
        ] {
            assert!(!looks_generated(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn write_then_compare_finds_stale_missing_and_extra() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate_for(&[fake_tool()]).unwrap();
        std::fs::create_dir_all(dir.path().join(MAN_DIR)).unwrap();
        std::fs::write(dir.path().join("man/ugw-gone.1"), "old").unwrap();
        std::fs::write(dir.path().join("man/notes.txt"), "kept").unwrap();

        let (written, removed) = write(dir.path(), &files).unwrap();
        assert_eq!(written.len(), files.len());
        assert_eq!(removed, [PathBuf::from("man/ugw-gone.1")]);
        assert!(dir.path().join("man/notes.txt").exists());
        assert!(compare(dir.path(), &files).unwrap().is_current());
        assert_eq!(
            write(dir.path(), &files).unwrap(),
            (vec![], vec![]),
            "a second run writes nothing"
        );

        std::fs::write(dir.path().join("man/ugw-fake.1"), "edited").unwrap();
        std::fs::remove_file(dir.path().join("completions/_ugw-fake")).unwrap();
        std::fs::write(dir.path().join("completions/ugw-old.fish"), "old").unwrap();
        let drift = compare(dir.path(), &files).unwrap();
        assert_eq!(
            drift,
            Drift {
                stale: vec![PathBuf::from("man/ugw-fake.1")],
                missing: vec![PathBuf::from("completions/_ugw-fake")],
                extra: vec![PathBuf::from("completions/ugw-old.fish")],
            }
        );
        assert_eq!(
            drift.describe(),
            "stale: man/ugw-fake.1\nmissing: completions/_ugw-fake\nextra: completions/ugw-old.fish\n"
        );
    }
}
