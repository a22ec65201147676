//! The documented examples, as an operator would copy them: extracted from README.md (fenced
//! `sh` and `yaml` blocks) and from the EXAMPLES sections of the generated man pages, split
//! into runnable units, and told apart (a shell command, Ansible tasks, a GitLab CI job file).

pub mod stage;

use std::path::{Path, PathBuf};

/// One example, where it is documented and what it is.
#[derive(Debug, Clone)]
pub struct Example {
    /// `README.md:52` or `man/ugw-wait-healthy.1:160`: the first line of the example.
    pub source: String,
    pub kind: Kind,
    /// The text as a reader sees it (man-page escapes undone).
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Lines for a shell.
    Shell,
    /// A list of Ansible tasks.
    Ansible,
    /// A `.gitlab-ci.yml` with jobs and their `script:` lines.
    GitLab,
}

impl Example {
    /// The ugw binaries the example runs (`ugw-fetch`, `ugw-wait-healthy`, ...), in order of
    /// first appearance.
    pub fn tools(&self) -> Vec<String> {
        let mut tools: Vec<String> = Vec::new();
        let text = self.text.as_str();
        for (at, _) in text.match_indices("ugw-") {
            let starts_a_word = text[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '-'));
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            let name = name.trim_end_matches('-');
            if starts_a_word && name.len() > "ugw-".len() && !tools.iter().any(|t| t == name) {
                tools.push(name.to_string());
            }
        }
        tools
    }

    /// The ugw binaries the example names that this workspace does not build: a misspelt
    /// name (`ugw-swapp`), or a tool that does not exist yet.
    pub fn unknown_tools(&self) -> Vec<String> {
        let known = known_binaries();
        self.tools()
            .into_iter()
            .filter(|tool| !known.contains(tool))
            .collect()
    }
}

/// The binaries an example may run: every tool of the registry (`src/lib.rs`, which
/// `src/bin/` follows) and the demo service the README starts.
pub fn known_binaries() -> Vec<String> {
    let mut names: Vec<String> = ugw::tools()
        .iter()
        .map(|tool| tool.name().to_string())
        .collect();
    names.push("ugw-demo-app".to_string());
    names
}

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every documented example: README.md first, then the man pages in name order.
pub fn all() -> Vec<Example> {
    let mut examples = readme(&read("README.md"));
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("man"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    pages.sort();
    for page in pages {
        let name = format!("man/{}", page.file_name().unwrap().to_string_lossy());
        examples.extend(man_page(&name, &std::fs::read_to_string(&page).unwrap()));
    }
    examples
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The fenced `sh` and `yaml` blocks of a Markdown file.
pub fn readme(markdown: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut block: Option<(usize, &str, Vec<&str>)> = None;
    for (number, line) in markdown.lines().enumerate() {
        match (&mut block, line.trim_start().strip_prefix("```")) {
            (None, Some(language)) => block = Some((number + 2, language.trim(), Vec::new())),
            (Some((first, language, lines)), Some(_)) => {
                if matches!(*language, "sh" | "yaml") {
                    examples.extend(examples_of(&format!("README.md:{first}"), *first, lines));
                }
                block = None;
            }
            (Some((_, _, lines)), None) => lines.push(line),
            (None, None) => {}
        }
    }
    examples
}

/// The `.EX`/`.EE` blocks of a man page's EXAMPLES section, unescaped.
pub fn man_page(name: &str, roff: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut in_section = false;
    let mut block: Option<(usize, Vec<String>)> = None;
    for (number, line) in roff.lines().enumerate() {
        if let Some(heading) = line.strip_prefix(".SH ") {
            in_section = heading.trim_matches('"') == "EXAMPLES";
            continue;
        }
        if !in_section {
            continue;
        }
        match (&mut block, line) {
            (None, ".EX") => block = Some((number + 2, Vec::new())),
            (Some((first, lines)), ".EE") => {
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                examples.extend(examples_of(&format!("{name}:{first}"), *first, &lines));
                block = None;
            }
            (Some((_, lines)), _) => lines.push(unescape_roff(line)),
            (None, _) => {}
        }
    }
    examples
}

/// One block: YAML is one example; shell lines are split into commands, so each command of a
/// list like README's gets a service of its own.
fn examples_of(source: &str, first_line: usize, lines: &[&str]) -> Vec<Example> {
    let text = lines.join("\n") + "\n";
    if let Some(kind) = yaml_kind(lines) {
        return vec![Example {
            source: source.to_string(),
            kind,
            text,
        }];
    }
    let file = source.rsplit_once(':').map_or(source, |(file, _)| file);
    shell_commands(lines)
        .into_iter()
        .map(|(offset, text)| Example {
            source: format!("{file}:{}", first_line + offset),
            kind: Kind::Shell,
            text,
        })
        .collect()
}

/// Ansible tasks start with `- name:`; a GitLab CI file is a mapping whose jobs have a `script:`.
fn yaml_kind(lines: &[&str]) -> Option<Kind> {
    let first = lines.iter().find(|l| !l.trim().is_empty())?;
    if first.starts_with("- name:") {
        Some(Kind::Ansible)
    } else if lines.iter().any(|l| l.trim() == "script:") {
        Some(Kind::GitLab)
    } else {
        None
    }
}

/// Shell lines grouped into commands: a line continues the command before it when that one
/// ends in `\`, when it starts with `|` or `&&`, or when everything before it is `set` lines
/// (`set -o pipefail` belongs to the pipe after it). Blank and comment-only lines separate
/// commands. Each command comes with the offset of its first line in the block.
fn shell_commands(lines: &[&str]) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    for (offset, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            commands.extend(current.take());
            continue;
        }
        let continues = current.as_ref().is_some_and(|(_, before)| {
            before.last().is_some_and(|l| l.trim_end().ends_with('\\'))
                || trimmed.starts_with('|')
                || trimmed.starts_with("&&")
                || before.iter().all(|l| l.trim_start().starts_with("set "))
        });
        match &mut current {
            Some((_, before)) if continues => before.push(line),
            _ => {
                commands.extend(current.take());
                current = Some((offset, vec![line]));
            }
        }
    }
    commands.extend(current);
    commands
        .into_iter()
        .map(|(offset, lines)| (offset, lines.join("\n") + "\n"))
        .collect()
}

/// Undo what xtask's `escape` does to a verbatim line, so the example reads as on a terminal.
pub fn unescape_roff(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let (replacement, used) = if let Some(code) = rest.strip_prefix('[') {
            let end = code.find(']').expect("a closed \\[...] escape");
            let hex = code[..end].strip_prefix('u').expect("a \\[uXXXX] escape");
            let c = char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap();
            (c.to_string(), end + 2)
        } else if let Some(name) = rest.strip_prefix('(') {
            let c = match &name[..2] {
                "aq" => '\'',
                "rs" => '\\',
                "ga" => '`',
                "ha" => '^',
                "ti" => '~',
                "dq" => '"',
                other => panic!("unknown roff escape \\({other} in {line:?}"),
            };
            (c.to_string(), 3)
        } else if rest.starts_with('-') {
            ("-".to_string(), 1)
        } else if rest.starts_with('&') {
            (String::new(), 1)
        } else {
            panic!("unknown roff escape in {line:?}")
        };
        out.push_str(&replacement);
        rest = &rest[used..];
    }
    out.push_str(rest);
    out
}

/// The lines of each job's `script:` in a GitLab CI file, jobs in file order (the order of
/// their stages in every example we document). Plain multi-line items fold into one line with
/// single spaces, as YAML does; other scalar forms are refused so the harness never runs
/// something other than what GitLab would.
pub fn gitlab_scripts(yaml: &str) -> Vec<(String, Vec<String>)> {
    let mut jobs: Vec<(String, Vec<String>)> = Vec::new();
    let mut job = String::new();
    let mut script_indent: Option<usize> = None;
    for line in yaml.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            job = trimmed.trim_end_matches(':').to_string();
            script_indent = None;
            continue;
        }
        if trimmed == "script:" {
            script_indent = Some(indent);
            jobs.push((job.clone(), Vec::new()));
            continue;
        }
        match script_indent {
            Some(at) if indent > at => {
                let lines = &mut jobs.last_mut().unwrap().1;
                if let Some(item) = trimmed.strip_prefix("- ") {
                    assert!(
                        !item.starts_with(['"', '\'', '|', '>']),
                        "{job}: a quoted or block script item; the harness folds plain ones only"
                    );
                    lines.push(item.to_string());
                } else {
                    let last = lines
                        .last_mut()
                        .expect("a script line before its continuation");
                    last.push(' ');
                    last.push_str(trimmed);
                }
            }
            _ => script_indent = None,
        }
    }
    jobs
}

/// `(task, status)` for `host` from ansible-playbook's default output, in the order the tasks
/// ran: `ok`, `changed`, `fatal`, `skipping`...
pub fn ansible_task_statuses(output: &str, host: &str) -> Vec<(String, String)> {
    let mut statuses = Vec::new();
    let mut task = String::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("TASK [") {
            task = rest
                .rsplit_once(']')
                .map_or(rest, |(name, _)| name)
                .to_string();
        } else if let Some((status, rest)) = line.split_once(": [")
            && rest.starts_with(&format!("{host}]"))
            && status.bytes().all(|b| b.is_ascii_lowercase())
        {
            statuses.push((task.clone(), status.to_string()));
        }
    }
    statuses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_are_undone() {
        assert_eq!(
            unescape_roff(r"ugw\-x \(aq.a == \(rs\(dqb\(rs\(dq\(aq \[u2026] \&.x"),
            "ugw-x '.a == \\\"b\\\"' \u{2026} .x"
        );
    }
}
