//! The pin: which image (by digest) each service runs, written atomically into an override
//! file ugw owns, FILE's folder's `.ugw/PROJECT.override.yml` (start-first: one per slot,
//! `.ugw/PROJECT-PORT.override.yml`), which ugw passes to Compose after FILE. An override
//! rather than a variable in the env file: the operator's files are never rewritten, and the
//! pin cannot be lost to an edit of them. Beside it, `.ugw/PROJECT.pins.json` keeps the
//! current and previous pins (and the live slot), for `status`, for switching back when a
//! restart fails, and for `--keep`, which never removes either.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use ugw_shared::atomic::write_atomic;
use ugw_shared::{Error, Result};

/// What is pinned now and before, as `pins.json` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pins {
    pub current: Option<String>,
    pub previous: Option<String>,
    /// start-first: the slot (port) serving.
    #[serde(default)]
    pub slot: Option<u16>,
}

/// Where ugw keeps a project's pin files.
#[derive(Debug, Clone)]
pub(crate) struct PinFiles {
    dir: PathBuf,
    project: String,
}

impl PinFiles {
    pub(crate) fn new(compose_file: &Path, project: &str) -> Self {
        let folder = compose_file.parent().unwrap_or(Path::new("/"));
        PinFiles {
            dir: folder.join(".ugw"),
            project: project.to_string(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The override file of the project, or of one slot of it.
    pub(crate) fn override_file(&self, slot: Option<u16>) -> PathBuf {
        match slot {
            None => self.dir.join(format!("{}.override.yml", self.project)),
            Some(port) => self
                .dir
                .join(format!("{}-{port}.override.yml", self.project)),
        }
    }

    fn pins_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pins.json", self.project))
    }

    pub(crate) fn lock_file(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.project))
    }

    /// Refuse, before anything is read or written, a planted link or other non-file where
    /// ugw keeps its own files: the `.ugw` folder, the pins file, the lock and the override
    /// of the project and of each of `slots`. A write would replace a link rather than follow
    /// it, but Compose and the pins reader would read through it first (another file's pin),
    /// and files under a linked folder would land wherever it points.
    pub(crate) fn refuse_planted(&self, slots: &[u16]) -> Result<()> {
        match std::fs::symlink_metadata(&self.dir) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(planted(&self.dir, &meta, "a folder"));
            }
            _ => {}
        }
        let mut files = vec![self.pins_file(), self.lock_file(), self.override_file(None)];
        files.extend(slots.iter().map(|port| self.override_file(Some(*port))));
        for file in files {
            if let Ok(meta) = std::fs::symlink_metadata(&file)
                && (meta.file_type().is_symlink() || !meta.is_file())
            {
                return Err(planted(&file, &meta, "a regular file"));
            }
        }
        Ok(())
    }

    pub(crate) fn load(&self) -> Result<Pins> {
        let path = self.pins_file();
        match ugw_shared::atomic::read_capped(&path, 64 * 1024) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::bad_record(format!("{} is not ugw's pin file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pins::default()),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), &e)),
        }
    }

    pub(crate) fn save(&self, pins: &Pins) -> Result<()> {
        self.create_dir()?;
        let mut bytes = serde_json::to_vec_pretty(pins)
            .map_err(|e| Error::new(ugw_shared::ErrorKind::Internal, format!("pins: {e}")))?;
        bytes.push(b'\n');
        write_atomic(&self.pins_file(), &bytes)
    }

    fn create_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("cannot create {}", self.dir.display()), &e))
    }

    /// Write the override that pins every service to `image` (and, for a slot, its port in
    /// `port_env` and a container name of its own), atomically: Compose reads the old pin or
    /// the new one, never half of one.
    pub(crate) fn write_override(
        &self,
        compose_file: &Path,
        services: &[String],
        image: &str,
        slot: Option<(&str, u16)>,
    ) -> Result<()> {
        self.create_dir()?;
        let text = override_text(
            file_version(compose_file).as_deref(),
            &self.project,
            services,
            image,
            slot,
        );
        write_atomic(
            &self.override_file(slot.map(|(_, port)| port)),
            text.as_bytes(),
        )
    }

    pub(crate) fn remove_override(&self, slot: Option<u16>) {
        let _ = std::fs::remove_file(self.override_file(slot));
    }
}

/// The usage error for `path`, which is a link or another kind of thing than `want`.
fn planted(path: &Path, meta: &std::fs::Metadata, want: &str) -> Error {
    let what = if meta.file_type().is_symlink() {
        let target =
            std::fs::read_link(path).map_or_else(|_| "?".to_string(), |t| t.display().to_string());
        format!("is a symbolic link (to {target})")
    } else {
        "is not ".to_string() + want
    };
    Error::usage(format!(
        "{} {what}: ugw-swap keeps its own files there only as {want} it made, never through a \
         link; nothing was changed (remove it if nothing of ugw's should be there)",
        path.display()
    ))
}

/// The top-level `version:` line of the operator's file, if it has one: Compose v1 refuses
/// an override of another version.
fn file_version(compose_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(compose_file).ok()?;
    text.lines()
        .find(|l| l.starts_with("version:"))
        .map(str::to_string)
}

/// A YAML scalar, quoted: a JSON string is a YAML double-quoted one.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn override_text(
    version: Option<&str>,
    project: &str,
    services: &[String],
    image: &str,
    slot: Option<(&str, u16)>,
) -> String {
    let mut lines = vec![
        "# Written by ugw-swap --compose; do not edit: the image each service runs, pinned by digest.".to_string(),
    ];
    lines.extend(version.map(str::to_string));
    lines.push("services:".to_string());
    for service in services {
        lines.push(format!("  {}:", quoted(service)));
        lines.push(format!("    image: {}", quoted(image)));
        if let Some((port_env, port)) = slot {
            let name = format!("{project}-{port}-{service}");
            lines.push(format!("    container_name: {}", quoted(&name)));
            lines.push("    environment:".to_string());
            lines.push(format!(
                "      {}: {}",
                quoted(port_env),
                quoted(&port.to_string())
            ));
        }
    }
    lines.join("\n") + "\n"
}

/// `repo@sha256:<64 hex>`: a reference that names exactly one image.
pub(crate) fn check_reference(reference: &str) -> std::result::Result<(), String> {
    let Some((repo, digest)) = reference.rsplit_once('@') else {
        return Err(format!(
            "{reference:?} is not pinned by digest (REPO@sha256:...)"
        ));
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    let repo_ok = !repo.is_empty()
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
    if !repo_ok || hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{reference:?} is not REPO@sha256:<64 hex digits>"));
    }
    Ok(())
}

/// The repository of a reference (`127.0.0.1:5000/app@sha256:...` -> `127.0.0.1:5000/app`).
pub(crate) fn repository(reference: &str) -> &str {
    reference
        .rsplit_once('@')
        .map_or(reference, |(repo, _)| repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_a_reference_by_digest_is_a_pin() {
        assert!(check_reference(&format!("127.0.0.1:5000/app@{DIGEST}")).is_ok());
        assert!(check_reference("127.0.0.1:5000/app:v2").is_err());
        assert!(check_reference("app@sha256:1234").is_err());
        assert!(check_reference(&format!("@{DIGEST}")).is_err());
        assert!(check_reference(&format!("app;rm -rf /@{DIGEST}")).is_err());
        assert_eq!(
            repository(&format!("127.0.0.1:5000/app@{DIGEST}")),
            "127.0.0.1:5000/app"
        );
    }

    #[test]
    fn the_override_pins_every_service_and_a_slot_gets_its_port_and_name() {
        let image = format!("r/app@{DIGEST}");
        let text = override_text(
            Some("version: \"3.8\""),
            "shop",
            &["api".into(), "worker".into()],
            &image,
            None,
        );
        assert!(
            text.contains("version: \"3.8\"\nservices:\n  \"api\":\n"),
            "{text}"
        );
        assert_eq!(text.matches(&image).count(), 2);
        assert!(!text.contains("container_name"));
        let slot = override_text(None, "shop", &["api".into()], &image, Some(("PORT", 8082)));
        assert!(slot.contains("container_name: \"shop-8082-api\""), "{slot}");
        assert!(slot.contains("\"PORT\": \"8082\""), "{slot}");
    }

    #[test]
    fn pins_are_kept_beside_the_compose_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = PinFiles::new(&dir.path().join("compose.yml"), "shop");
        assert_eq!(files.load().unwrap(), Pins::default());
        let pins = Pins {
            current: Some("a".into()),
            previous: Some("b".into()),
            slot: Some(8081),
        };
        files.save(&pins).unwrap();
        assert_eq!(files.load().unwrap(), pins);
        assert_eq!(
            files.override_file(Some(8081)),
            dir.path().join(".ugw/shop-8081.override.yml")
        );
    }
}
