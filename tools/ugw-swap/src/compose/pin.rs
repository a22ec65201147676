//! The pin: which image (by digest) each service runs, written atomically into an override
//! file ugw owns, FILE's folder's `.ugw/PROJECT.override.yml` (start-first: one per slot,
//! `.ugw/PROJECT-PORT.override.yml`), which ugw passes to Compose after FILE. An override
//! rather than a variable in the env file: the operator's files are never rewritten, and the
//! pin cannot be lost to an edit of them. Beside it, `.ugw/PROJECT.pins.json` keeps, for each
//! set of services swapped together (a unit: `--service api --service worker` is one), the
//! current and previous pins (and the live slot), for `status`, for switching back when a
//! restart fails, and for `--keep`, which never removes any unit's current or previous.
//!
//! Units of one project share its files, so a swap of one unit keeps every other unit's pin:
//! the project's override names every stop-first unit's current image, not just this one's.
//! A service belongs to one unit: swapping it in another set is refused, because its pin and
//! its way back would be two units' at once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

/// `pins.json`: every unit's pins, by the unit's services (sorted, joined with `,`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PinBook {
    units: BTreeMap<String, Pins>,
}

/// `pins.json` as an older ugw wrote it (one unit's pins, flat) or as this one does.
#[derive(Deserialize)]
#[serde(untagged)]
enum PinsFile {
    Book(PinBook),
    Flat(Pins),
}

/// The key of the unit `services` make.
fn unit_key(services: &[String]) -> String {
    let mut sorted: Vec<&str> = services.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join(",")
}

/// Where ugw keeps a project's pin files, seen by one unit of its services.
#[derive(Debug, Clone)]
pub(crate) struct PinFiles {
    dir: PathBuf,
    project: String,
    unit: String,
}

impl PinFiles {
    pub(crate) fn new(compose_file: &Path, project: &str, services: &[String]) -> Self {
        let folder = compose_file.parent().unwrap_or(Path::new("/"));
        PinFiles {
            dir: folder.join(".ugw"),
            project: project.to_string(),
            unit: unit_key(services),
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

    /// Every unit's pins. A flat file (an earlier ugw's, which kept one unit per project and
    /// did not say which) is taken for the unit that reads it: the services an operator swaps
    /// again are the ones swapped before, and the next save writes it as a book.
    fn book(&self) -> Result<PinBook> {
        let path = self.pins_file();
        let bytes = match ugw_shared::atomic::read_capped(&path, 64 * 1024) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PinBook::default()),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), &e)),
        };
        match serde_json::from_slice(&bytes) {
            Ok(PinsFile::Book(book)) => Ok(book),
            Ok(PinsFile::Flat(pins)) => Ok(PinBook {
                units: BTreeMap::from([(self.unit.clone(), pins)]),
            }),
            Err(e) => Err(Error::bad_record(format!(
                "{} is not ugw's pin file: {e}",
                path.display()
            ))),
        }
    }

    /// This unit's pins; a service of it already pinned in another unit is refused.
    pub(crate) fn load(&self) -> Result<Pins> {
        let book = self.book()?;
        let mine: Vec<&str> = self.unit.split(',').collect();
        for (unit, pins) in &book.units {
            if *unit == self.unit || pins.current.is_none() {
                continue;
            }
            if let Some(shared) = unit.split(',').find(|s| mine.contains(s)) {
                return Err(Error::usage(format!(
                    "service {shared} of project {} is pinned by the swaps of another set of \
                     services (swapped as --service {}), and one service has one pin and one \
                     way back: swap that same set, or give this one a --project of its own; \
                     nothing was changed",
                    self.project,
                    unit.replace(',', " --service ")
                )));
            }
        }
        Ok(book.units.get(&self.unit).cloned().unwrap_or_default())
    }

    /// Every image some unit of the project runs now or ran before: what `--keep` keeps.
    pub(crate) fn pinned_anywhere(&self) -> Result<Vec<String>> {
        Ok(self
            .book()?
            .units
            .into_values()
            .flat_map(|p| [p.current, p.previous])
            .flatten()
            .collect())
    }

    /// This unit's pins, the other units' kept as they are.
    pub(crate) fn save(&self, pins: &Pins) -> Result<()> {
        let mut book = self.book()?;
        book.units.insert(self.unit.clone(), pins.clone());
        self.create_dir()?;
        let mut bytes = serde_json::to_vec_pretty(&book)
            .map_err(|e| Error::new(ugw_shared::ErrorKind::Internal, format!("pins: {e}")))?;
        bytes.push(b'\n');
        write_atomic(&self.pins_file(), &bytes)
    }

    fn create_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("cannot create {}", self.dir.display()), &e))
    }

    /// Write the override that pins every service of this unit to `image` (and, for a slot,
    /// its port in `port_env` and a container name of its own), atomically: Compose reads the
    /// old pin or the new one, never half of one. The project's own override (no slot) also
    /// names every other stop-first unit's current image, so their pins stay.
    pub(crate) fn write_override(
        &self,
        compose_file: &Path,
        services: &[String],
        image: &str,
        slot: Option<(&str, u16)>,
    ) -> Result<()> {
        let mut pinned = match slot {
            None => self.other_units_pinned()?,
            Some(_) => Vec::new(),
        };
        pinned.extend(services.iter().map(|s| (s.clone(), image.to_string())));
        self.create_dir()?;
        let text = override_text(
            file_version(compose_file).as_deref(),
            &self.project,
            &pinned,
            slot,
        );
        write_atomic(
            &self.override_file(slot.map(|(_, port)| port)),
            text.as_bytes(),
        )
    }

    /// This unit's pin gone from the override: a slot's override is removed (a leftover one
    /// is rewritten by the next swap onto that slot anyway); the project's keeps the other
    /// units' pins, and is removed only when none is left.
    pub(crate) fn remove_override(&self, compose_file: &Path, slot: Option<u16>) -> Result<()> {
        let file = self.override_file(slot);
        if slot.is_some() {
            let _ = std::fs::remove_file(&file);
            return Ok(());
        }
        let others = self.other_units_pinned()?;
        if others.is_empty() {
            return match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io(format!("cannot remove {}", file.display()), &e))
                }
                _ => Ok(()),
            };
        }
        let text = override_text(
            file_version(compose_file).as_deref(),
            &self.project,
            &others,
            None,
        );
        write_atomic(&file, text.as_bytes())
    }

    /// (service, image) of every other unit pinned in the project's own override.
    fn other_units_pinned(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .book()?
            .units
            .into_iter()
            .filter(|(unit, pins)| *unit != self.unit && pins.slot.is_none())
            .filter_map(|(unit, pins)| Some((unit, pins.current?)))
            .flat_map(|(unit, image)| {
                unit.split(',')
                    .map(|s| (s.to_string(), image.clone()))
                    .collect::<Vec<_>>()
            })
            .collect())
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
    pinned: &[(String, String)],
    slot: Option<(&str, u16)>,
) -> String {
    let mut lines = vec![
        "# Written by ugw-swap --compose; do not edit: the image each service runs, pinned by digest.".to_string(),
    ];
    lines.extend(version.map(str::to_string));
    lines.push("services:".to_string());
    for (service, image) in pinned {
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
        let both = [
            ("api".into(), image.clone()),
            ("worker".into(), image.clone()),
        ];
        let text = override_text(Some("version: \"3.8\""), "shop", &both, None);
        assert!(
            text.contains("version: \"3.8\"\nservices:\n  \"api\":\n"),
            "{text}"
        );
        assert_eq!(text.matches(&image).count(), 2);
        assert!(!text.contains("container_name"));
        let slot = override_text(None, "shop", &both[..1], Some(("PORT", 8082)));
        assert!(slot.contains("container_name: \"shop-8082-api\""), "{slot}");
        assert!(slot.contains("\"PORT\": \"8082\""), "{slot}");
    }

    #[test]
    fn pins_are_kept_beside_the_compose_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = PinFiles::new(&dir.path().join("compose.yml"), "shop", &["api".into()]);
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

    fn unit(dir: &Path, services: &[&str]) -> PinFiles {
        let services: Vec<String> = services.iter().map(|s| (*s).to_string()).collect();
        PinFiles::new(&dir.join("compose.yml"), "shop", &services)
    }

    fn pinned(current: &str, previous: Option<&str>) -> Pins {
        Pins {
            current: Some(current.into()),
            previous: previous.map(Into::into),
            slot: None,
        }
    }

    #[test]
    fn two_units_of_one_project_keep_each_others_pins_and_override_lines() {
        let dir = tempfile::tempdir().unwrap();
        let compose = dir.path().join("compose.yml");
        let (web, worker) = (unit(dir.path(), &["web"]), unit(dir.path(), &["worker"]));
        web.write_override(&compose, &["web".into()], "r/app@w2", None)
            .unwrap();
        web.save(&pinned("r/app@w2", Some("r/app@w1"))).unwrap();
        worker
            .write_override(&compose, &["worker".into()], "r/app@k2", None)
            .unwrap();
        worker.save(&pinned("r/app@k2", None)).unwrap();

        assert_eq!(web.load().unwrap(), pinned("r/app@w2", Some("r/app@w1")));
        assert_eq!(worker.load().unwrap(), pinned("r/app@k2", None));
        let text = std::fs::read_to_string(web.override_file(None)).unwrap();
        assert!(text.contains("\"web\":\n    image: \"r/app@w2\""), "{text}");
        assert!(
            text.contains("\"worker\":\n    image: \"r/app@k2\""),
            "{text}"
        );
        let mut kept = worker.pinned_anywhere().unwrap();
        kept.sort();
        assert_eq!(kept, ["r/app@k2", "r/app@w1", "r/app@w2"]);

        // The worker's pin taken away leaves the web's in the override.
        worker.remove_override(&compose, None).unwrap();
        let text = std::fs::read_to_string(web.override_file(None)).unwrap();
        assert!(
            text.contains("r/app@w2") && !text.contains("worker"),
            "{text}"
        );
    }

    #[test]
    fn a_service_pinned_in_another_set_is_refused_not_pinned_twice() {
        let dir = tempfile::tempdir().unwrap();
        let both = unit(dir.path(), &["worker", "api"]);
        both.save(&pinned("r/app@a2", None)).unwrap();
        // The same set in another order is the same unit.
        assert_eq!(
            unit(dir.path(), &["api", "worker"]).load().unwrap(),
            pinned("r/app@a2", None)
        );
        let e = unit(dir.path(), &["api"]).load().unwrap_err();
        assert_eq!(e.kind, ugw_shared::ErrorKind::Usage);
        assert!(
            e.message.contains("--service api --service worker"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_older_ugws_flat_pins_file_is_read_as_this_units_and_saved_as_a_book() {
        let dir = tempfile::tempdir().unwrap();
        let web = unit(dir.path(), &["web"]);
        std::fs::create_dir_all(dir.path().join(".ugw")).unwrap();
        std::fs::write(
            web.pins_file(),
            r#"{"current": "r/app@w2", "previous": "r/app@w1", "slot": 8081}"#,
        )
        .unwrap();
        let flat = Pins {
            slot: Some(8081),
            ..pinned("r/app@w2", Some("r/app@w1"))
        };
        assert_eq!(web.load().unwrap(), flat);
        web.save(&pinned("r/app@w3", Some("r/app@w2"))).unwrap();
        let text = std::fs::read_to_string(web.pins_file()).unwrap();
        assert!(
            text.contains("\"units\"") && text.contains("\"web\""),
            "{text}"
        );
        assert_eq!(web.load().unwrap(), pinned("r/app@w3", Some("r/app@w2")));
    }
}
