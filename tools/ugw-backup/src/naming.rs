//! What a `create` records and is called: `--app-version` read from `--root`'s current
//! release when not given (so the operator need not look it up by hand before an upgrade),
//! and `--name` as a template (`{version}`, `{time}`, `{run}`, `{host}`), so a name never
//! collides with last week's backup of the same version.

use std::path::Path;
use ugw_shared::{Error, Result};

/// The marker ugw-swap writes into each release it stages (its layout: `ROOT/releases/<V>/`
/// and `ROOT/current -> releases/<V>`; see ugw-swap(1)).
const RELEASE_MARKER: &str = ".ugw-release";

/// The version of the release `ROOT/current` points to: the `version` of its marker, or the
/// release folder's name when it has none. A `current` that is missing, a folder made by
/// hand, or a link out of `ROOT/releases` names no version: a usage error, since the
/// operator asked for the version from there.
pub fn current_release_version(root: &Path) -> Result<String> {
    let link = root.join("current");
    let hint = "give --app-version V";
    let points_to = std::fs::read_link(&link).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else if link.is_dir() {
            "is a folder, not a link to a release (ugw-swap adopts it on its first switch)"
                .to_string()
        } else {
            format!("cannot be read as a link ({e})")
        };
        Error::usage(format!(
            "--root {}: {} {what}, so it names no current release; {hint}",
            root.display(),
            link.display()
        ))
    })?;
    let releases = root.join("releases");
    let name = points_to
        .strip_prefix("releases")
        .or_else(|_| points_to.strip_prefix(&releases))
        .ok()
        .and_then(|rest| rest.to_str())
        .filter(|name| !name.is_empty() && !name.starts_with('.') && !name.contains('/'))
        .ok_or_else(|| {
            Error::usage(format!(
                "--root {}: {} points to {}, not to a release in {}; {hint}",
                root.display(),
                link.display(),
                points_to.display(),
                releases.display()
            ))
        })?;
    let folder = releases.join(name);
    if !std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
        return Err(Error::usage(format!(
            "--root {}: the current release {} is not a folder; {hint}",
            root.display(),
            folder.display()
        )));
    }
    Ok(marker_version(&folder).unwrap_or_else(|| name.to_string()))
}

/// The `version` field of a release's marker, when it has a readable one.
fn marker_version(folder: &Path) -> Option<String> {
    let bytes = ugw_shared::atomic::read_capped(&folder.join(RELEASE_MARKER), 64 * 1024).ok()?;
    let marker: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    marker
        .get("version")?
        .as_str()
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// What a `--name` template's fields stand for.
pub struct Fields<'a> {
    pub version: Option<&'a str>,
    /// The UTC time, compact and sortable (`20261130T044100Z`).
    pub time: &'a str,
    pub run: &'a str,
    pub host: &'a str,
}

/// `--name` with its fields filled in, checked to be a plain file name.
pub fn expand(template: &str, fields: &Fields<'_>) -> Result<String> {
    let mut name = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        name.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| {
            Error::usage(format!(
                "--name {template}: a '{{' without its '}}' (fields: {{version}}, {{time}}, {{run}}, {{host}})"
            ))
        })?;
        let value = match &after[..close] {
            "version" => fields.version.ok_or_else(|| {
                Error::usage(format!(
                    "--name {template}: {{version}} needs --app-version V or --root ROOT"
                ))
            })?,
            "time" => fields.time,
            "run" => fields.run,
            "host" => fields.host,
            other => {
                return Err(Error::usage(format!(
                    "--name {template}: unknown field {{{other}}} (fields: {{version}}, {{time}}, {{run}}, {{host}})"
                )));
            }
        };
        // A field's value never makes a path: '/' (and NUL) become '_'.
        name.extend(
            value
                .chars()
                .map(|c| if c == '/' || c == '\0' { '_' } else { c }),
        );
        rest = &after[close + 1..];
    }
    name.push_str(rest);
    if name.contains('/') || name.starts_with('.') || name.is_empty() {
        return Err(Error::usage(format!(
            "--name {name}: a plain file name is needed"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields<'static> {
        Fields {
            version: Some("1.4/2"),
            time: "20261130T044100Z",
            run: "20261130T044100Z-node1-4f2a",
            host: "node1",
        }
    }

    #[test]
    fn fields_are_filled_in_and_never_make_a_path() {
        assert_eq!(
            expand("app-before-{version}-{time}", &fields()).unwrap(),
            "app-before-1.4_2-20261130T044100Z"
        );
        assert_eq!(
            expand("{host}-{run}", &fields()).unwrap(),
            "node1-20261130T044100Z-node1-4f2a"
        );
        assert_eq!(expand("plain", &fields()).unwrap(), "plain");
    }

    #[test]
    fn a_bad_template_is_a_usage_error() {
        for bad in ["app-{nope}", "app-{version", "../x", ".hidden", ""] {
            assert!(expand(bad, &fields()).is_err(), "{bad}");
        }
        let no_version = Fields {
            version: None,
            ..fields()
        };
        let err = expand("app-{version}", &no_version).unwrap_err();
        assert!(err.message.contains("--app-version"), "{}", err.message);
    }
}
