//! Release-folder mode: `ROOT/releases/<version>/` and `ROOT/current -> releases/<version>`.
//! Each release carries a marker (its version, the digest of the artifact it came from, when
//! it was staged); a release left by a rollback or a failed restart carries `.ugw-failed`.

use crate::place::same_place;
use crate::restart::restart_service;
use crate::this_run::nothing_to_take_back;
use crate::{Options, ReleasesMode, Swapped, restart_failed};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use ugw_shared::atomic::{exchange_durable, rename_durable, replace_symlink, sync_dir};
use ugw_shared::digest::sha256_path;
use ugw_shared::owner_only::owned_by_invoker;
use ugw_shared::record::Status;
use ugw_shared::results::SwapRelease;
use ugw_shared::{Ctx, Error, ErrorKind, Result, lock};

/// The marker every release staged by ugw carries.
const MARKER: &str = ".ugw-release";
/// The marker of a release that was switched away from as failed.
const FAILED: &str = ".ugw-failed";
/// The note a swap leaves in a release before switching `current` to it when a restart
/// follows, removed once that restart ran: a later run that finds it in the current release
/// knows the switch happened but the restart never did (the run was killed between the two).
const RESTART_PENDING: &str = crate::pending::NOTE;
/// ugw's own files in a release: not part of its digest.
const OURS: &[&str] = &[MARKER, FAILED, RESTART_PENDING];

/// What [`RESTART_PENDING`] holds: what a rerun needs to finish the interrupted swap as it
/// would have finished (a failed restart switches back to `previous`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingRestart {
    /// The release live before the switch (`None`: there was none).
    previous: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    version: String,
    sha256: String,
    /// Nanoseconds since the epoch when it was staged: the order of releases.
    staged_ns: u64,
    /// What the `ugw-fetch` step it was moved from vouched for (its manifest's digest, or
    /// the file's sha256): a rerun of that step's swap, after the move took the staged
    /// artifact away, finds it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fetched: Option<String>,
}

#[derive(Debug, Clone)]
struct Release {
    name: String,
    sha256: Option<String>,
    staged_ns: u64,
    failed: bool,
    /// Staged by ugw (its marker) in a folder of the invoking user's or root's: the only
    /// kind of release a prune removes.
    staged: bool,
}

/// Why `path` is not a folder ugw may treat as its own (a symbolic link, not a folder,
/// another user's), or `None` when it is one or does not exist.
fn not_ours(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    match meta {
        m if m.file_type().is_symlink() => Some(format!(
            "{} is a symbolic link, not a folder ugw made",
            path.display()
        )),
        m if !m.is_dir() => Some(format!("{} is not a folder", path.display())),
        m if !owned_by_invoker(&m) => Some(format!(
            "{} belongs to uid {}, not to you or root",
            path.display(),
            std::os::unix::fs::MetadataExt::uid(&m)
        )),
        _ => None,
    }
}

fn planted(why: &str) -> Error {
    Error::new(
        ErrorKind::UnsafeInput,
        format!("{why}; refusing to use it (nothing was switched or removed)"),
    )
}

/// `--link SHARED:TARGET`, TARGET a relative path that stays inside the release.
pub(crate) fn parse_link(raw: &str) -> Result<(PathBuf, PathBuf)> {
    let bad = |why: &str| Error::usage(format!("--link '{raw}': {why}"));
    let (shared, target) = raw
        .split_once(':')
        .ok_or_else(|| bad("not SHARED:TARGET"))?;
    let target = PathBuf::from(target);
    if shared.is_empty()
        || target.as_os_str().is_empty()
        || !target
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(bad(
            "TARGET must be a relative path inside the release, without '..'",
        ));
    }
    Ok((PathBuf::from(shared), target))
}

/// A version as a folder name: one plain path component, not hidden.
fn check_version(version: &str) -> Result<()> {
    if version.is_empty()
        || version.starts_with('.')
        || version.contains('/')
        || version.contains('\0')
    {
        return Err(Error::usage(format!(
            "the version '{version}' cannot name a release folder (no '/', not hidden)"
        )));
    }
    Ok(())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An I/O error as the step's error: a full disk or a spent quota (a copy, a folder made)
/// is kind `no_space`, anything else `io`.
fn io(what: impl std::fmt::Display, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("cannot {what} {}", path.display());
    move |e| Error::io_write(context, &e)
}

/// What `ROOT/current` is.
#[derive(Debug, PartialEq, Eq)]
enum Current {
    None,
    Release(String),
    /// A real folder: an install made by hand, adopted before the first switch.
    HandMade,
}

struct Root {
    dir: PathBuf,
}

impl Root {
    fn releases(&self) -> PathBuf {
        self.dir.join("releases")
    }

    fn release(&self, name: &str) -> PathBuf {
        self.releases().join(name)
    }

    fn link(&self) -> PathBuf {
        self.dir.join("current")
    }

    fn current(&self) -> Result<Current> {
        let link = self.link();
        let meta = match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Current::None),
            other => other.map_err(io("read", &link))?,
        };
        if meta.is_dir() {
            return Ok(Current::HandMade);
        }
        if !meta.is_symlink() {
            return Err(Error::usage(format!(
                "{} is neither a symlink nor a folder; refusing to replace it",
                link.display()
            )));
        }
        let points_to = std::fs::read_link(&link).map_err(io("read", &link))?;
        let inside = points_to
            .strip_prefix("releases")
            .or_else(|_| points_to.strip_prefix(self.releases()))
            .ok()
            .and_then(|rest| rest.to_str())
            .filter(|name| check_version(name).is_ok());
        match inside {
            Some(name) => Ok(Current::Release(name.to_string())),
            None => Err(Error::usage(format!(
                "{} points to {}, not into {}",
                link.display(),
                points_to.display(),
                self.releases().display()
            ))),
        }
    }

    /// The marker of a release that is a real folder of ours (never read through a symlink
    /// planted in releases/, which could carry a copied marker).
    fn marker(&self, name: &str) -> Option<Marker> {
        if not_ours(&self.release(name)).is_some() {
            return None;
        }
        let path = self.release(name).join(MARKER);
        let bytes = ugw_shared::atomic::read_capped(&path, 64 * 1024).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every release, oldest first (by when it was staged; a folder without a marker by its
    /// modification time).
    fn list(&self) -> Result<Vec<Release>> {
        let dir = self.releases();
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(io("read", &dir))?,
        };
        let mut list = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("read", &dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if name.starts_with('.') || !is_dir {
                continue;
            }
            let marker = self.marker(&name);
            let staged_ns = marker.as_ref().map_or_else(
                || {
                    entry
                        .metadata()
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos() as u64)
                },
                |m| m.staged_ns,
            );
            list.push(Release {
                failed: self.release(&name).join(FAILED).exists(),
                staged: marker.is_some(),
                sha256: marker.map(|m| m.sha256),
                staged_ns,
                name,
            });
        }
        list.sort_by(|a, b| (a.staged_ns, &a.name).cmp(&(b.staged_ns, &b.name)));
        Ok(list)
    }

    /// The newest release staged before `current` that is not marked failed.
    fn previous_of(&self, current: &str) -> Result<Option<String>> {
        let list = self.list()?;
        let Some(at) = list.iter().position(|r| r.name == current) else {
            return Ok(None);
        };
        Ok(list[..at]
            .iter()
            .rev()
            .find(|r| !r.failed)
            .map(|r| r.name.clone()))
    }

    /// Move a hand-made `current` folder into `releases/` and point `current` at it.
    fn adopt(&self) -> Result<String> {
        let name = format!("adopted-{}", now_ns() / 1_000_000_000);
        std::fs::create_dir_all(self.releases()).map_err(io("create", &self.releases()))?;
        let folder = self.release(&name);
        let sha256 = sha256_path(&self.link(), OURS)?;
        write_marker(&self.link(), &name, &sha256, None)?;
        // A rename then a new link: `current` is missing between the two (once, ever).
        rename_durable(&self.link(), &folder)?;
        self.switch_to(&name)?;
        Ok(name)
    }

    /// Whether the artifact must be copied in: not when `releases/<version>` holds it
    /// already; refused when it holds another one, unless `force`.
    fn needs_staging(&self, version: &str, sha256: &str, force: bool) -> Result<bool> {
        if let Some(why) = not_ours(&self.release(version)) {
            return Err(planted(&why));
        }
        match self.marker(version) {
            Some(m) if m.sha256 == sha256 => Ok(false),
            Some(m) if !force => Err(Error::usage(format!(
                "releases/{version} holds another artifact (sha256 {}, this one {sha256}); --force replaces it",
                m.sha256
            ))),
            None if self.release(version).exists() && !force => Err(Error::usage(format!(
                "releases/{version} exists and was not staged by ugw; --force replaces it"
            ))),
            _ => Ok(true),
        }
    }

    /// The digest of `releases/<version>` when an earlier swap of this run moved the fetch
    /// step's artifact there (so `from`, the step's path, is gone): a rerun finds it staged
    /// already instead of failing on the missing folder. `None` in every other case.
    fn moved_already(
        &self,
        from: &Path,
        version: &str,
        vouched: Option<&crate::artifact::Vouched>,
    ) -> Option<String> {
        let vouched = vouched?;
        let gone = std::fs::symlink_metadata(from)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
        let marker = self.marker(version).filter(|_| gone)?;
        (marker.fetched.as_deref() == Some(vouched.digest().as_str())).then_some(marker.sha256)
    }

    /// The artifact's digest once it is checked (`artifact::check`), or the release's when a
    /// swap of this run moved it there already.
    fn checked_digest(&self, from: &Path, version: &str, options: &Options) -> Result<String> {
        match self.moved_already(from, version, options.vouched.as_ref()) {
            Some(sha256) => Ok(sha256),
            None => crate::artifact::check(from, options.vouched.as_ref(), OURS),
        }
    }

    fn switch_to(&self, name: &str) -> Result<()> {
        replace_symlink(&self.link(), &Path::new("releases").join(name))
    }

    /// Mark a release failed, saying when and why: a later swap to it names both.
    fn mark_failed(&self, name: &str, why: &str) -> Result<()> {
        let note = format!(
            "marked failed by ugw-swap at {}: {why}\n",
            ugw_shared::time::rfc3339_millis(SystemTime::now())
        );
        ugw_shared::atomic::write_atomic(&self.release(name).join(FAILED), note.as_bytes())
    }

    /// Note in `version` that `current` is about to name it and a restart is to follow.
    fn note_restart_pending(&self, version: &str, previous: Option<&str>) -> Result<()> {
        let note = PendingRestart {
            previous: previous.map(str::to_string),
        };
        crate::pending::write(&self.release(version).join(RESTART_PENDING), &note)
    }

    /// The note of a switch to `version` whose restart never ran to its end, if `version` (a
    /// real folder of ours) has one; its `previous` only when that names a release folder
    /// still there (a forged `../x` is never followed).
    fn restart_pending(&self, version: &str) -> Option<PendingRestart> {
        if not_ours(&self.release(version)).is_some() {
            return None;
        }
        let note: PendingRestart =
            crate::pending::read(&self.release(version).join(RESTART_PENDING))?;
        let previous = note.previous.filter(|name| {
            check_version(name).is_ok()
                && name != version
                && std::fs::symlink_metadata(self.release(name)).is_ok_and(|m| m.is_dir())
        });
        Some(PendingRestart { previous })
    }

    /// The restart after the switch to `version` ran (or the switch was taken back): its note
    /// goes.
    fn clear_restart_pending(&self, ctx: &Ctx, version: &str) {
        crate::pending::clear(ctx, &self.release(version).join(RESTART_PENDING));
    }

    /// A release marked failed is not swapped in again without a word (issue 21 item 15):
    /// refused, naming when and why, unless `force`.
    fn refuse_failed(&self, version: &str, force: bool) -> Result<()> {
        match self.failed_note(version) {
            Some(note) if !force => Err(Error::usage(format!(
                "releases/{version} was {note}; give --force to swap it in again (nothing was \
                 switched)"
            ))),
            _ => Ok(()),
        }
    }

    /// What the failed mark of a release says (when and why), if it has one.
    fn failed_note(&self, name: &str) -> Option<String> {
        let path = self.release(name).join(FAILED);
        let note = ugw_shared::atomic::read_capped(&path, 4096).ok()?;
        let note = String::from_utf8_lossy(&note).trim().to_string();
        Some(if note.is_empty() {
            "marked failed".to_string()
        } else {
            note
        })
    }

    /// Copy the artifact into a temp folder in `releases/`, link the shared paths, write the
    /// marker, then give it its name. A half-copied release never carries a version's name.
    /// A folder of that name already there (`--force`) is exchanged with the new one in one
    /// rename: a reader of `current/...` sees the old content or the new, never nothing, and
    /// the old content is kept (the path returned) until the new one is proven.
    fn stage(
        &self,
        ctx: &mut Ctx,
        from: &Path,
        version: &str,
        sha256: &str,
        options: &Options,
        links: &[(PathBuf, PathBuf)],
    ) -> Result<Option<PathBuf>> {
        let releases = self.releases();
        std::fs::create_dir_all(&releases).map_err(io("create", &releases))?;
        let temp = releases.join(format!(".{version}.{}.staging", now_ns()));
        ctx.track_temp(&temp);
        let meta = std::fs::symlink_metadata(from).map_err(io("read", from))?;
        let name = from
            .file_name()
            .ok_or_else(|| Error::usage(format!("{} has no file name", from.display())))?;
        // Before anything is moved: a --link that cannot be made fails here, not with the
        // staged artifact half-way into releases/.
        for (shared, _) in links {
            let shared = self.dir.join(shared);
            if !shared.exists() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("--link: {} does not exist", shared.display()),
                ));
            }
        }
        let moved = match &options.vouched {
            Some(vouched) => move_in(from, &temp, meta.is_dir(), vouched, sha256)?,
            None => false,
        };
        if moved {
            ctx.reporter.info(&format!(
                "moved {} into releases/ (one file system: nothing copied)",
                from.display()
            ));
        } else if meta.is_dir() {
            std::fs::create_dir(&temp).map_err(io("create", &temp))?;
            copy_tree(from, &temp)?;
        } else {
            std::fs::create_dir(&temp).map_err(io("create", &temp))?;
            copy_file(from, &temp.join(name))?;
        }
        for (shared, target) in links {
            self.link_shared(&temp, shared, target)?;
        }
        let fetched = moved
            .then(|| {
                options
                    .vouched
                    .as_ref()
                    .map(crate::artifact::Vouched::digest)
            })
            .flatten();
        write_marker(&temp, version, sha256, fetched)?;
        sync_dir(&temp)?;
        let final_path = self.release(version);
        if std::fs::symlink_metadata(&final_path).is_err() {
            rename_durable(&temp, &final_path)?;
            ctx.keep_temp(&temp);
            return Ok(None);
        }
        // --force over a folder of this name: when it is live, this exchange is the switch.
        ctx.cancel
            .critical(|| exchange_durable(&temp, &final_path))?;
        ctx.keep_temp(&temp);
        let replaced = releases.join(format!(".{version}.{}.replaced", now_ns()));
        rename_durable(&temp, &replaced)?;
        Ok(Some(replaced))
    }

    /// Put the content `--force` replaced back under its name (the new content, now at
    /// `replaced`, failed) and remove the failed content.
    fn put_back(&self, version: &str, replaced: &Path) -> Result<()> {
        exchange_durable(replaced, &self.release(version))?;
        std::fs::remove_dir_all(replaced).map_err(io("remove", replaced))
    }

    /// A release staged already is live content and never changed in place: each `--link`
    /// given must be in it already, as staging would have made it, or the swap is refused
    /// (rather than switched without the link).
    fn check_links_in_place(&self, version: &str, links: &[(PathBuf, PathBuf)]) -> Result<()> {
        for (shared, target) in links {
            let wanted = std::path::absolute(self.dir.join(shared))
                .map_err(io("resolve", &self.dir.join(shared)))?;
            let at = self.release(version).join(target);
            if std::fs::read_link(&at).is_ok_and(|points_to| points_to == wanted) {
                continue;
            }
            return Err(Error::usage(format!(
                "releases/{version} is staged already, and {} in it is not a link to {}: a \
                 staged release is never changed in place; give --force to stage it again \
                 with --link {}:{} (nothing was switched)",
                target.display(),
                wanted.display(),
                shared.display(),
                target.display()
            )));
        }
        Ok(())
    }

    /// A successful swap to a release takes back its failed mark (from an earlier rollback
    /// or restart that failed): it is live and healthy now, and a later rollback may go to it.
    fn clear_failed(&self, name: &str) -> Result<bool> {
        let mark = self.release(name).join(FAILED);
        match std::fs::remove_file(&mark) {
            Ok(()) => {
                sync_dir(&self.release(name))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot remove {}", mark.display()), &e)),
        }
    }

    fn link_shared(&self, release: &Path, shared: &Path, target: &Path) -> Result<()> {
        let shared = self.dir.join(shared);
        if !shared.exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("--link: {} does not exist", shared.display()),
            ));
        }
        let absolute = std::path::absolute(&shared).map_err(io("resolve", &shared))?;
        crate::link_at::replace_with_symlink(release, target, &absolute)
    }

    /// Remove what a killed run left in `releases/` (under the lock, nobody else is writing
    /// there): only ugw's own, by their exact names (`.V.NS.staging`, a copy not yet named;
    /// `.V.NS.pruning`, a release half removed), folders of the invoking user's or root's.
    fn remove_leftovers(&self, ctx: &Ctx) {
        let Ok(entries) = std::fs::read_dir(self.releases()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_leftover_name(&name) || not_ours(&entry.path()).is_some() {
                continue;
            }
            ctx.reporter.info(&format!(
                "removing releases/{name}, left by an interrupted run"
            ));
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }

    /// Remove the oldest releases beyond `keep`; never `protect`ed ones, nor a failed one
    /// staged after the current one (kept for forensics).
    fn prune(&self, keep: usize, current: &str, protect: &[&str]) -> Result<Vec<String>> {
        let list = self.list()?;
        let current_ns = list
            .iter()
            .find(|r| r.name == current)
            .map_or(u64::MAX, |r| r.staged_ns);
        let mut excess = list.len().saturating_sub(keep);
        let mut pruned = Vec::new();
        for release in &list {
            if excess == 0 {
                break;
            }
            // A folder ugw did not stage (no marker: data, notes, a hand-made copy) is never
            // removed, whatever it is doing in releases/.
            let kept = !release.staged
                || release.name == current
                || protect.contains(&release.name.as_str())
                || (release.failed && release.staged_ns > current_ns);
            if kept {
                continue;
            }
            // Renamed aside first: a folder half removed never carries a version's name.
            let aside = self
                .releases()
                .join(format!(".{}.{}.pruning", release.name, now_ns()));
            rename_durable(&self.release(&release.name), &aside)?;
            std::fs::remove_dir_all(&aside).map_err(io("remove", &aside))?;
            pruned.push(release.name.clone());
            excess -= 1;
        }
        Ok(pruned)
    }
}

/// Whether `name` is a temp folder ugw-swap makes in `releases/`: `.V.NS.staging` or
/// `.V.NS.pruning`, V a version and NS the nanoseconds it was made at.
fn is_leftover_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some(rest) = rest
        .strip_suffix(".staging")
        .or_else(|| rest.strip_suffix(".pruning"))
    else {
        return false;
    };
    rest.rsplit_once('.').is_some_and(|(version, ns)| {
        !ns.is_empty() && ns.bytes().all(|b| b.is_ascii_digit()) && check_version(version).is_ok()
    })
}

fn write_marker(folder: &Path, version: &str, sha256: &str, fetched: Option<String>) -> Result<()> {
    let marker = Marker {
        version: version.to_string(),
        sha256: sha256.to_string(),
        staged_ns: now_ns(),
        fetched,
    };
    let text = serde_json::to_vec(&marker).expect("a marker always serialises");
    ugw_shared::atomic::write_atomic(&folder.join(MARKER), &text)
}

/// Move the artifact a `ugw-fetch` step of this run staged (and `vouched` for) into `temp`, a
/// private name in `releases/`, in one rename (issue 21 item 16: staged once, on disk once).
/// `Ok(false)` when the two are on different file systems (EXDEV): it is copied instead, as a
/// hand-given `--from` always is (the operator's own folder is never taken away). What was
/// moved is checked again where it is now, under a name only this run uses in a folder of
/// ours, before it gets a release's name: the fetch step's manifest (or sha256) and the digest
/// checked before the move (`sha256`, which the marker records). When it differs (it changed
/// between the check and the move) it is moved back and refused: `checksum_mismatch`.
fn move_in(
    from: &Path,
    temp: &Path,
    is_dir: bool,
    vouched: &crate::artifact::Vouched,
    sha256: &str,
) -> Result<bool> {
    let moved_to = if is_dir {
        temp.to_path_buf()
    } else {
        std::fs::create_dir(temp).map_err(io("create", temp))?;
        temp.join(from.file_name().unwrap_or_default())
    };
    match std::fs::rename(from, &moved_to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            if !is_dir {
                let _ = std::fs::remove_dir(temp);
            }
            return Ok(false);
        }
        Err(e) => return Err(io("move", from)(e)),
    }
    let checked = if is_dir {
        crate::artifact::check_folder(&moved_to, vouched)
            .and_then(|()| sha256_path(&moved_to, OURS))
    } else {
        ugw_shared::digest::sha256_file(&moved_to).and_then(|got| {
            crate::artifact::check_digest(&moved_to, &got, &vouched.sha256).map(|()| got)
        })
    };
    let refused = match checked {
        Ok(got) if got == sha256 => None,
        Ok(got) => Some(Error::new(
            ErrorKind::ChecksumMismatch,
            format!(
                "{} changed between its check and its move into releases/ (sha256 {got},                  checked {sha256}); nothing was switched",
                from.display()
            ),
        )),
        Err(e) => Some(e),
    };
    let Some(refused) = refused else {
        if let Some(staging) = from.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(staging)?;
        }
        return Ok(true);
    };
    // Back where the fetch step left it: refused, nothing switched, nothing lost.
    let back = std::fs::rename(&moved_to, from);
    if !is_dir {
        let _ = std::fs::remove_dir(temp);
    }
    Err(match back {
        Ok(()) => refused,
        Err(e) => Error::new(
            refused.kind,
            format!(
                "{}; and it could not be moved back from {}: {e}",
                refused.message,
                moved_to.display()
            ),
        ),
    })
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map_err(io("copy", from))?;
    let file = std::fs::File::open(to).map_err(io("open", to))?;
    file.sync_all().map_err(io("fsync", to))
}

/// Copy a folder tree: files (with their mode), folders (with their mode exactly: a 0700
/// `secrets/` stays 0700, a 1777 `tmp/` keeps its sticky bit, a 0555 folder is made read-only
/// once filled), symlinks as symlinks. Anything else (a device, a FIFO) is refused.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(io("read", from))? {
        let entry = entry.map_err(io("read", from))?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io("read", &source))?;
        if kind.is_dir() {
            std::fs::create_dir(&dest).map_err(io("create", &dest))?;
            copy_tree(&source, &dest)?;
            let mode = entry.metadata().map_err(io("read", &source))?.mode() & 0o7777;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                .map_err(io("set the mode of", &dest))?;
            sync_dir(&dest)?;
        } else if kind.is_symlink() {
            let points_to = std::fs::read_link(&source).map_err(io("read", &source))?;
            std::os::unix::fs::symlink(points_to, &dest).map_err(io("create", &dest))?;
        } else if kind.is_file() {
            copy_file(&source, &dest)?;
        } else {
            return Err(Error::new(
                ErrorKind::UnsafeInput,
                format!(
                    "{} is a device, socket or FIFO; not copied",
                    source.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Release-folder mode: swap, roll back, or `status`.
pub(crate) fn run(ctx: &mut Ctx, options: &Options, mode: &ReleasesMode) -> Result<Swapped> {
    let dir = mode.root.as_path();
    let root = Root {
        dir: dir.to_path_buf(),
    };
    let result = Swapped {
        mode: "release".into(),
        root: Some(dir.display().to_string()),
        ..Swapped::default()
    };
    if options.status {
        let result = status(&root, result)?;
        if std::io::stderr().is_terminal() {
            ctx.reporter.block(&status_table(&root.list()?, &result));
        }
        return Ok(result);
    }
    if !ctx.dry_run {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let _lock = if ctx.dry_run {
        None
    } else {
        Some(lock::acquire(
            &dir.join(".ugw-swap.lock"),
            options.lock_timeout,
            &ctx.cancel,
            &ctx.host,
            &ctx.tool,
        )?)
    };
    // releases/ is a real folder of ours: a symbolic link planted there (to data/, say) would
    // make a prune delete what it points into.
    if let Some(why) = not_ours(&root.releases()) {
        return Err(planted(&why));
    }
    if !ctx.dry_run {
        root.remove_leftovers(ctx);
    }
    if options.rollback {
        return rollback(ctx, options, &root, result);
    }
    swap(ctx, options, mode, &root, result)
}

/// The artifact to stage and the release name it gets, from the flags or this run's fetch
/// step; the name checked (a plain name, never a path).
fn artifact_and_version(options: &Options) -> Result<(PathBuf, String)> {
    let from = options.from.clone().ok_or_else(|| {
        Error::usage("no --from, and no ugw-fetch step in the record to take the path from")
    })?;
    let version = options.version.clone().ok_or_else(|| {
        Error::usage("no --release, and no ugw-fetch step in the record to take it from")
    })?;
    check_version(&version)?;
    Ok((from, version))
}

/// What `current` is, once a hand-made current folder is adopted into releases/ (a dry run
/// only says it would be).
fn adopt_hand_made(ctx: &Ctx, root: &Root, result: &mut Swapped) -> Result<Current> {
    let current = root.current()?;
    if current != Current::HandMade {
        return Ok(current);
    }
    if ctx.dry_run {
        result.would = Some(format!(
            "adopt the hand-made {} into releases/",
            root.link().display()
        ));
        return Ok(current);
    }
    let name = root.adopt()?;
    ctx.reporter.info(&format!(
        "adopted the hand-made current folder as releases/{name}"
    ));
    result.adopted = Some(name.clone());
    Ok(Current::Release(name))
}

/// Stage the artifact as `releases/<version>` (unless it is there already), switch, restart
/// (switching back if that fails), prune.
fn swap(
    ctx: &mut Ctx,
    options: &Options,
    mode: &ReleasesMode,
    root: &Root,
    mut result: Swapped,
) -> Result<Swapped> {
    let (from, version) = artifact_and_version(options)?;
    // Before anything changes: only its owner or root can change the artifact, and when a
    // fetch step of this run staged it, it is what that step verified.
    let sha256 = root.checked_digest(&from, &version, options)?;
    let previous = match adopt_hand_made(ctx, root, &mut result)? {
        Current::Release(name) => Some(name),
        _ => None,
    };
    result.previous.clone_from(&previous);
    let restage = root.needs_staging(&version, &sha256, mode.force)?;
    if !restage {
        root.check_links_in_place(&version, &mode.links)?;
    }
    if previous.as_deref() == Some(version.as_str()) && !restage {
        match root.restart_pending(&version) {
            Some(pending) if crate::pending::restart_follows(options) => {
                restart_interrupted(ctx, options, mode, root, &mut result, &version, &pending)?;
            }
            pending => {
                already_current(ctx, options, root, &mut result, &version, pending.is_some())?;
            }
        }
        return Ok(result);
    }
    root.refuse_failed(&version, mode.force)?;
    if ctx.dry_run {
        result.would = Some(would(&from, &version, restage, options));
        result.current = Some(version);
        return Ok(result);
    }
    let replaced = if restage {
        root.stage(ctx, &from, &version, &sha256, options, &mode.links)?
    } else {
        None
    };
    ugw_shared::failpoint::hit("swap.after-stage-move");
    if crate::pending::restart_follows(options) {
        root.note_restart_pending(&version, previous.as_deref())?;
    }
    ctx.cancel.critical(|| root.switch_to(&version))?;
    ugw_shared::failpoint::hit("swap.after-current-switch");
    result.current = Some(version.clone());
    result.changed = true;
    ctx.reporter.info(&format!(
        "current -> releases/{version}{}",
        previous
            .as_deref()
            .map_or_else(String::new, |p| format!(" (was {p})"))
    ));
    let switched = Switched {
        previous: previous.as_deref(),
        version: &version,
        replaced: replaced.as_deref(),
    };
    restart_after_switch(ctx, options, root, &mut result, &switched)?;
    if let Some(replaced) = &replaced {
        // The new content is proven: the content it replaced can go.
        std::fs::remove_dir_all(replaced).map_err(io("remove", replaced))?;
    }
    finish(ctx, mode, root, &mut result, &version, previous.as_deref())?;
    Ok(result)
}

/// The release asked for is live already: nothing to switch; `--force-restart` restarts it
/// anyway. `never_restarted`: the run that switched to it was interrupted before its restart
/// (this run has none to run: it is said).
fn already_current(
    ctx: &Ctx,
    options: &Options,
    root: &Root,
    result: &mut Swapped,
    version: &str,
    never_restarted: bool,
) -> Result<()> {
    result.current = Some(version.to_string());
    let what = format!("releases/{version}");
    if never_restarted {
        ctx.reporter.warn(&format!(
            "{what} became current in a run interrupted before its restart, so the service may \
             still run the release before; give --restart or --start to restart it"
        ));
    }
    let dir = root.release(version);
    let live = Some((dir.as_path(), version));
    if crate::forced_restart(ctx, options, result, &what, live)?.is_none() {
        ctx.reporter
            .info(&format!("{what} is already current; nothing to do"));
    }
    Ok(())
}

/// `current` names `version`, switched by a run killed before its restart ran to its end (the
/// note it left in the release says so): run that restart now, as that run would have (a
/// failed one switches back to the release live before it), and finish as it would have.
fn restart_interrupted(
    ctx: &Ctx,
    options: &Options,
    mode: &ReleasesMode,
    root: &Root,
    result: &mut Swapped,
    version: &str,
    pending: &PendingRestart,
) -> Result<()> {
    result.current = Some(version.to_string());
    result.previous.clone_from(&pending.previous);
    let what = format!(
        "releases/{version} became current in a run interrupted before its restart ran to its end"
    );
    if ctx.dry_run {
        result.would = Some(format!("restart: {what}"));
        return Ok(());
    }
    ctx.reporter.warn(&format!("{what}; restarting it now"));
    result.changed = true;
    let switched = Switched {
        previous: pending.previous.as_deref(),
        version,
        replaced: None,
    };
    restart_after_switch(ctx, options, root, result, &switched)?;
    finish(
        ctx,
        mode,
        root,
        result,
        version,
        pending.previous.as_deref(),
    )
}

/// The restart after the switch, if one was asked for; when it fails, the switch is undone
/// (`revert`) and the error carries both runs. Once it ran to an outcome, the switch's
/// [`RESTART_PENDING`] note goes (a failed restart's, once the switch is taken back).
fn restart_after_switch(
    ctx: &Ctx,
    options: &Options,
    root: &Root,
    result: &mut Swapped,
    switched: &Switched<'_>,
) -> Result<()> {
    let dir = root.release(switched.version);
    let Some(first) = restart_service(
        ctx,
        options,
        "after_switch",
        result,
        Some(&dir),
        Some(switched.version),
    ) else {
        return Ok(());
    };
    let first = first?;
    let ok = first.ok;
    result.restarts.push(first);
    result.restarted = ok;
    if ok {
        root.clear_restart_pending(ctx, switched.version);
        return Ok(());
    }
    let error = revert(ctx, options, root, std::mem::take(result), switched);
    if !matches!(root.current(), Ok(Current::Release(live)) if live == switched.version) {
        root.clear_restart_pending(ctx, switched.version);
    }
    Err(error)
}

/// What a swap switched, for the revert when its restart fails.
struct Switched<'a> {
    /// The release live before (`None`: there was none).
    previous: Option<&'a str>,
    version: &'a str,
    /// Where the content `--force` replaced under `version`'s name is kept.
    replaced: Option<&'a Path>,
}

/// What a dry run of the swap would do.
fn would(from: &Path, version: &str, restage: bool, options: &Options) -> String {
    let stage = if restage {
        format!("stage {} as releases/{version}, then ", from.display())
    } else {
        String::new()
    };
    let then = if options.restart.is_some() || options.start.is_some() {
        ", then restart"
    } else {
        ""
    };
    format!("{stage}switch current to releases/{version}{then}")
}

/// After a successful switch (and restart): the release's failed mark goes, and releases
/// beyond --keep are pruned and named.
fn finish(
    ctx: &Ctx,
    mode: &ReleasesMode,
    root: &Root,
    result: &mut Swapped,
    version: &str,
    previous: Option<&str>,
) -> Result<()> {
    if root.clear_failed(version)? {
        ctx.reporter.info(&format!(
            "releases/{version} was marked failed; this successful swap to it clears the mark"
        ));
    }
    let protect: Vec<&str> = previous.into_iter().collect();
    result.pruned = root.prune(mode.keep, version, &protect)?;
    if !result.pruned.is_empty() {
        ctx.reporter.info(&format!(
            "pruned {} old release(s) beyond --keep {}: {}",
            result.pruned.len(),
            mode.keep,
            result
                .pruned
                .iter()
                .map(|name| format!("releases/{name}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// The restart after the switch failed: switch back, mark the new release failed, restart
/// again; the error carries both runs. A release `--force` staged again over an existing one
/// gets its earlier content back under its name instead (the failed content is removed, so
/// nothing is marked failed), and `current` goes back to the release live before.
fn revert(
    ctx: &Ctx,
    options: &Options,
    root: &Root,
    mut result: Swapped,
    switched: &Switched<'_>,
) -> Error {
    let Switched {
        previous,
        version,
        replaced,
    } = *switched;
    let first_outcome = result
        .restarts
        .first()
        .map_or_else(String::new, |r| r.outcome.clone());
    let Some(previous) = previous else {
        if let Some(replaced) = replaced {
            ctx.reporter.info(&format!(
                "the content releases/{version} held before --force is kept in {}",
                replaced.display()
            ));
        }
        return restart_failed(&result, None);
    };
    let switched = ctx.cancel.critical(|| {
        if let Some(replaced) = replaced {
            root.put_back(version, replaced)?;
            return if previous == version {
                Ok(())
            } else {
                root.switch_to(previous)
            };
        }
        root.switch_to(previous)?;
        root.mark_failed(version, &format!("its restart failed ({first_outcome})"))
    });
    if let Err(e) = switched {
        return Error::new(
            ErrorKind::RestartFailed,
            format!(
                "the restart failed, and switching back to {previous} failed too: {}",
                e.message
            ),
        )
        .with_typed(&result);
    }
    result.current = Some(previous.to_string());
    if replaced.is_some() {
        // Everything is as before this swap: the release live before is live, with the
        // content it had (a rollback of this run has nothing to take back).
        result.previous = Some(previous.to_string());
        ctx.reporter.info(&format!(
            "releases/{version} holds the content it had before --force again"
        ));
    } else {
        result.previous = Some(version.to_string());
        result.marked_failed = Some(version.to_string());
    }
    let dir = root.release(previous);
    match restart_service(
        ctx,
        options,
        "after_revert",
        &result,
        Some(&dir),
        Some(previous),
    ) {
        Some(Ok(again)) => result.restarts.push(again),
        Some(Err(e)) => return e.with_typed(&result),
        None => {}
    }
    restart_failed(&result, Some(previous))
}

/// `--rollback`: switch back to the release before (this run's own swap's, else the newest
/// one before current not marked failed), mark the one left failed, restart.
fn rollback(ctx: &mut Ctx, options: &Options, root: &Root, mut result: Swapped) -> Result<Swapped> {
    result.rollback = true;
    let place = root.link().display().to_string();
    let ours = |r: &Swapped| same_place(r.root.as_deref(), &root.dir);
    if let Some(why) = nothing_to_take_back(ctx, ours, &place) {
        result.current = match root.current()? {
            Current::Release(current) => Some(current),
            _ => None,
        };
        ctx.reporter.info(&why);
        return Ok(result);
    }
    let Current::Release(current) = root.current()? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{} is not a release link; nothing to roll back",
                root.link().display()
            ),
        ));
    };
    let target = rollback_target(ctx, root, &current)?;
    result.previous = Some(current.clone());
    result.current = Some(target.clone());
    result.marked_failed = Some(current.clone());
    if ctx.dry_run {
        result.would = Some(format!(
            "switch current back to releases/{target}, mark {current} failed"
        ));
        return Ok(result);
    }
    ctx.cancel.critical(|| {
        root.switch_to(&target)?;
        root.mark_failed(
            &current,
            &format!("rolled back to {target} (run {})", ctx.record().run),
        )
    })?;
    result.changed = true;
    // A restart an interrupted swap to `current` never ran is not wanted any more.
    root.clear_restart_pending(ctx, &current);
    ctx.reporter.info(&format!(
        "rolled back: current -> releases/{target}; {current} marked failed"
    ));
    restart_after_rollback(ctx, options, root, &mut result, &target)?;
    Ok(result)
}

/// The release a rollback from `current` goes to: the one this run's last swap of this root
/// left, when it is still usable, else the newest one before `current` not marked failed.
fn rollback_target(ctx: &Ctx, root: &Root, current: &str) -> Result<String> {
    let ours = |r: &Swapped| same_place(r.root.as_deref(), &root.dir);
    // A real folder in releases/ (never a symlink planted there), not the current one, not
    // marked failed.
    let usable = |name: &str| {
        name != current
            && std::fs::symlink_metadata(root.release(name)).is_ok_and(|m| m.is_dir())
            && !root.release(name).join(FAILED).exists()
    };
    // The release this run's last swap of this root left: a name checked as --release is
    // (a forged `previous` of `../../evil` or `/etc` is refused, never followed).
    let recorded = ctx
        .this_run()
        .results_newest_first::<Swapped>()
        .into_iter()
        // An interrupted swap recorded what it had switched (its restart was cut short).
        .find(|(status, r)| matches!(status, Status::Ok | Status::Interrupted) && ours(r))
        .and_then(|(_, r)| r.previous);
    if let Some(previous) = &recorded
        && check_version(previous).is_err()
    {
        return Err(Error::bad_record(format!(
            "this run's ugw-swap step of {} names the previous release {previous:?}, which \
             cannot name a folder in releases/ (no '/', not hidden): refusing to follow it; \
             nothing was switched",
            root.dir.display()
        )));
    }
    match recorded.filter(|p| usable(p)) {
        Some(p) => Ok(p),
        None => root.previous_of(current)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "no release before {current} that is not marked failed; nothing to roll back to"
                ),
            )
        }),
    }
}

/// The restart after a rollback's switch, if one was asked for; a failed one is exit 1
/// (there is nothing further back to switch to).
fn restart_after_rollback(
    ctx: &Ctx,
    options: &Options,
    root: &Root,
    result: &mut Swapped,
    target: &str,
) -> Result<()> {
    let dir = root.release(target);
    let Some(run) = restart_service(
        ctx,
        options,
        "after_switch",
        result,
        Some(&dir),
        Some(target),
    ) else {
        return Ok(());
    };
    let run = run?;
    let ok = run.ok;
    result.restarts.push(run);
    result.restarted = ok;
    if ok {
        Ok(())
    } else {
        Err(restart_failed(result, None))
    }
}

fn status(root: &Root, mut result: Swapped) -> Result<Swapped> {
    let current = match root.current()? {
        Current::Release(name) => Some(name),
        _ => None,
    };
    result.previous = match &current {
        Some(name) => root.previous_of(name)?,
        None => None,
    };
    result.releases = Some(
        root.list()?
            .into_iter()
            .map(|r| SwapRelease {
                current: current.as_deref() == Some(r.name.as_str()),
                version: r.name,
                sha256: r.sha256,
                failed: r.failed,
            })
            .collect(),
    );
    result.current = current;
    Ok(result)
}

/// `status` for a person at a terminal (issue 21 item 17): one line per release, oldest
/// first, with its marks and when it was staged. The record says the same for programs.
fn status_table(list: &[Release], result: &Swapped) -> String {
    if list.is_empty() {
        return "no releases".to_string();
    }
    let width = list.iter().map(|r| r.name.len()).max().unwrap_or(0).max(7);
    let mut lines = vec![format!("  {:<width$}  {:<24}  MARKS", "RELEASE", "STAGED")];
    for release in list {
        let mut marks = Vec::new();
        if result.current.as_deref() == Some(release.name.as_str()) {
            marks.push("current");
        }
        if result.previous.as_deref() == Some(release.name.as_str()) {
            marks.push("previous");
        }
        if release.failed {
            marks.push("failed");
        }
        if !release.staged {
            marks.push("not staged by ugw");
        }
        let staged = ugw_shared::time::rfc3339_millis(
            UNIX_EPOCH + std::time::Duration::from_nanos(release.staged_ns),
        );
        let pointer = if marks.first() == Some(&"current") {
            '*'
        } else {
            ' '
        };
        lines.push(format!(
            "{pointer} {:<width$}  {staged:<24}  {}",
            release.name,
            marks.join(", ")
        ));
    }
    lines.join("\n")
}

/// `--dry-run` on a dry-run ugw-fetch step that staged nothing: there is no artifact to
/// check, so say what would be switched (ugw(7): a whole pipeline can be dry-run). The
/// release name is checked, a release marked failed is refused as a real swap refuses it, and
/// nothing is touched.
pub(crate) fn unfetched(
    dir: &Path,
    from: &Path,
    version: &str,
    force: bool,
    restart: bool,
) -> Result<Swapped> {
    check_version(version)?;
    let root = Root {
        dir: dir.to_path_buf(),
    };
    let previous = match root.current()? {
        Current::Release(name) => Some(name),
        _ => None,
    };
    let would = if previous.as_deref() == Some(version) {
        format!("nothing: releases/{version} is current already (not fetched: dry-run)")
    } else {
        root.refuse_failed(version, force)?;
        format!(
            "stage {} as releases/{version}, then switch current to releases/{version}{} \
             (not fetched: dry-run)",
            from.display(),
            if restart { ", then restart" } else { "" }
        )
    };
    Ok(Swapped {
        mode: "release".into(),
        root: Some(dir.display().to_string()),
        previous,
        current: Some(version.to_string()),
        would: Some(would),
        ..Swapped::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_versions_stay_inside_their_folder() {
        assert!(parse_link("shared/.env:.env").is_ok());
        assert!(parse_link("shared/x:sub/dir/x").is_ok());
        for bad in ["noseparator", "s:../x", "s:/etc/passwd", ":x", "s:"] {
            assert!(parse_link(bad).is_err(), "{bad}");
        }
        for bad in ["", ".hidden", "a/b", "..", "."] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert!(check_version("v1.2.3").is_ok());
    }

    /// A staged folder as ugw-fetch leaves it, and the word of its fetch step.
    fn fetched_folder(dir: &Path) -> (PathBuf, crate::artifact::Vouched, String) {
        let from = dir.join("staging/app");
        std::fs::create_dir_all(from.join("bin")).unwrap();
        std::fs::write(from.join("bin/app"), "v1").unwrap();
        let manifest = ugw_shared::tree_manifest::TreeManifest::of(&from, &[]).unwrap();
        let vouched = crate::artifact::Vouched {
            path: from.clone(),
            sha256: "00".repeat(32),
            manifest_sha256: Some(manifest.digest()),
        };
        let sha256 = sha256_path(&from, OURS).unwrap();
        std::fs::create_dir(dir.join("releases")).unwrap();
        (from, vouched, sha256)
    }

    #[test]
    fn a_move_keeps_the_inode_and_a_folder_changed_before_it_is_moved_back_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (from, vouched, sha256) = fetched_folder(dir.path());
        let inode = std::fs::metadata(from.join("bin/app")).unwrap().ino();
        let temp = dir.path().join("releases/.v1.1.staging");
        assert!(move_in(&from, &temp, true, &vouched, &sha256).unwrap());
        assert_eq!(
            std::fs::metadata(temp.join("bin/app")).unwrap().ino(),
            inode
        );
        assert!(!from.exists());

        // Changed after its check (the digest given), before the move: checked again where
        // it landed, refused, and put back where it was.
        let dir = tempfile::tempdir().unwrap();
        let (from, vouched, sha256) = fetched_folder(dir.path());
        std::fs::write(from.join("bin/app"), "evil").unwrap();
        let temp = dir.path().join("releases/.v1.1.staging");
        let err = move_in(&from, &temp, true, &vouched, &sha256).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChecksumMismatch, "{}", err.message);
        assert!(!temp.exists());
        assert_eq!(
            std::fs::read_to_string(from.join("bin/app")).unwrap(),
            "evil"
        );

        // Its digest taken after the change (as the marker would record it), the manifest
        // the fetch step verified before: the manifest decides.
        let dir = tempfile::tempdir().unwrap();
        let (from, vouched, _) = fetched_folder(dir.path());
        std::fs::write(from.join("bin/app"), "evil").unwrap();
        let tampered = sha256_path(&from, OURS).unwrap();
        let temp = dir.path().join("releases/.v1.1.staging");
        let err = move_in(&from, &temp, true, &vouched, &tampered).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChecksumMismatch, "{}", err.message);
        assert!(!temp.exists() && from.join("bin/app").exists());

        // The same content with another digest than the one checked (the marker would lie).
        let dir = tempfile::tempdir().unwrap();
        let (from, vouched, _) = fetched_folder(dir.path());
        let temp = dir.path().join("releases/.v1.1.staging");
        let err = move_in(&from, &temp, true, &vouched, "not-the-digest").unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChecksumMismatch, "{}", err.message);
        assert!(from.join("bin/app").exists());

        // A file: by the sha256 the step verified.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("staging")).unwrap();
        std::fs::create_dir(dir.path().join("releases")).unwrap();
        let file = dir.path().join("staging/app");
        std::fs::write(&file, "binary").unwrap();
        let digest = ugw_shared::digest::sha256_file(&file).unwrap();
        let vouched = crate::artifact::Vouched {
            path: file.clone(),
            sha256: digest.clone(),
            manifest_sha256: None,
        };
        std::fs::write(&file, "tampered").unwrap();
        // Its digest taken after the change: the fetch step's sha256 decides.
        let tampered = ugw_shared::digest::sha256_file(&file).unwrap();
        let temp = dir.path().join("releases/.app.1.staging");
        let err = move_in(&file, &temp, false, &vouched, &tampered).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChecksumMismatch, "{}", err.message);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "tampered");
        assert!(!temp.exists());
    }

    #[test]
    fn only_ugw_temp_folders_are_leftovers() {
        for ours in [
            ".v1.2.1765100000123456789.staging",
            ".v1.5.pruning",
            ".a.1.staging",
        ] {
            assert!(is_leftover_name(ours), "{ours}");
        }
        for not_ours in [
            "v1.1.staging",
            ".v1.x1.staging",
            ".v1..staging",
            "..1.staging",
            ".v1.1.replaced",
            ".v1.1.staging.old",
            ".staging",
        ] {
            assert!(!is_leftover_name(not_ours), "{not_ours}");
        }
    }
}
