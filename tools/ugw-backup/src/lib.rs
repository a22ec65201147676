//! ugw-backup: replaces "tar the folder and hope". `create` makes one archive with a manifest
//! of every entry's hash (SQLite through its online backup API, PostgreSQL through `pg_dump`),
//! `verify` proves it whole,
//! `restore` unpacks it strictly (into a folder, or back in place by swap), and `list` and
//! `prune` keep the backup folder tidy.
#![forbid(unsafe_code)]

mod catalog;
mod compress;
mod create;
mod from_record;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod glob;
mod manifest;
mod mounts;
mod naming;
mod pg;
mod restore;
mod reuse;
mod sqlite;
mod table;
mod verify;
mod volume;

use clap::{Arg, ArgGroup, ArgMatches, Command};
use compress::Codec;
use serde_json::json;
use std::path::{Path, PathBuf};
use ugw_shared::cli::flag;
use ugw_shared::db::{self, Databases, DbUrl};
use ugw_shared::{Ctx, Error, Result, StepResult, tool_command};

const TOOL: &str = "ugw-backup";
const LOCK_NAME: &str = ".ugw-backup.lock";

const EXAMPLES: &str = "\
Examples:
  # Before an upgrade: the data folder and a live SQLite database, the newest 5 kept (the
  # name never collides; --root /opt/app instead of --app-version records the running release):
  ugw-backup create --path /srv/app/data --db sqlite:///srv/app/app.db --out /var/backups/app --name 'app-before-{version}-{time}' --app-version 1.4.2 --keep 5 > run.json

  # Prove the backup of that run whole (re-hashes the archive and every entry):
  ugw-backup verify < run.json

  # The failure path of a run: put the paths and the database back where they were:
  ugw-backup restore --in-place --expect-app-version 1.4.2 < run.json

  # Look inside that backup without touching the live paths (or name the archive instead):
  ugw-backup restore --to /tmp/restored < run.json

  # What is there, and keep the newest 3:
  ugw-backup list --out /var/backups/app
  ugw-backup prune --out /var/backups/app --keep 3";

pub use ugw_shared::results::Backup as BackupResult;

/// The flag and subcommand ids: each is read in one place, [`Options::from_matches`].
mod id {
    ugw_shared::flag_ids! {
        CREATE, VERIFY, RESTORE, LIST, PRUNE,
        OUT, ARCHIVE, PATH, VOLUME, EXCLUDE, PG_GLOBALS, NAME, APP_VERSION, ROOT, KEEP,
        COMPRESS, LEVEL, THREADS, STRICT, NO_SPACE_CHECK,
        TO, IN_PLACE, FORCE, PG, EXPECT_APP_VERSION,
        PREFIX,
    }
}

/// This tool as `cli` and xtask see it: `restore` is the inverse that runs on failed records.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run)
        .inverse_when(|m| m.subcommand_name() == Some(id::RESTORE))
}

fn out_arg() -> Arg {
    flag::path(id::OUT, "DIR", "The backup folder").required(true)
}

fn archive_arg() -> Arg {
    Arg::new(id::ARCHIVE)
        .value_name("ARCHIVE")
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "The archive [default: the one of this run's last ugw-backup create step on this host]",
        )
}

/// The clap command: the common flags, then the five subcommands.
#[must_use]
pub fn command() -> Command {
    tool_command(TOOL, "A verified backup before every upgrade, and a restore you can trust")
        .long_about(
            "Back up files, folders and SQLite databases into one archive with a manifest of every \
             entry's SHA-256; verify it whole; restore it strictly (nothing is ever written outside \
             its place), into a folder or back where it was.\n\n\
             Without ARCHIVE, verify, restore and prune take the archive of this run's last \
             create step on this host: never a verify or list step's, never another run's or \
             host's (ugw(7), WHAT A TOOL TRUSTS). create writes the run and the host into the \
             archive's manifest, and a restore from the record checks them, and the digest the \
             create step recorded, before it touches anything: a step naming another archive \
             (last night's, another service's, one made on another host, or one written before \
             manifests named their run) is refused, exit 2, nothing restored. It then restores \
             only the paths that manifest names. An ARCHIVE named on the command line is \
             restored as named.\n\n\
             restore --in-place is the inverse of create, and runs on a failed record. On a \
             failed record where this run made no backup (it failed before create), it is a \
             no-op: exit 0, \"changed\": false, and a message saying so. Run again after this \
             run's restore of that archive succeeded, it does nothing (\"changed\": false, exit \
             0), since the node may have taken new writes since; --force restores it again.",
        )
        .after_long_help(EXAMPLES)
        // `ugw-backup create --version` answers as `ugw-backup --version` does, not with a
        // usage error (issue 21).
        .propagate_version(true)
        .subcommand_required(true)
        .subcommand(create_command())
        .subcommand(
            Command::new(id::VERIFY)
                .about("Re-hash an archive against its sidecar and every entry against its manifest")
                .arg(archive_arg()),
        )
        .subcommand(restore_command())
        .subcommand(
            Command::new(id::LIST)
                .about("The backups in a folder: size, date, app version, state")
                .arg(out_arg()),
        )
        .subcommand(
            Command::new(id::PRUNE)
                .about("Remove all but the newest N backups of this host (never the one the record refers to, never a file that is not a ugw backup)")
                .long_about(
                    "Remove all but the newest N backups of this host (never the one the record \
                     refers to, never a file that is not a ugw backup).\n\n\
                     A backup counts only when it is a regular file named as its manifest sidecar \
                     says, has its checksum sidecar, and was made on this host (and, with \
                     --prefix, its name starts with it; create --keep counts only backups of the \
                     same paths and databases). Each removal is said on stderr and listed in the \
                     step's removed; one that cannot be removed is warned about, listed in \
                     not_removed, and prune goes on.",
                )
                .arg(out_arg())
                .arg(keep_arg().required(true))
                .arg(flag::text(
                    id::PREFIX,
                    "NAME",
                    "Only backups whose --name starts with this (one backup set in a shared folder)",
                )),
        )
}

fn keep_arg() -> Arg {
    flag::count(id::KEEP, "Keep the newest N backups")
}

fn create_command() -> Command {
    Command::new(id::CREATE)
        .about("Back up paths and SQLite databases into one verified archive")
        .long_about(
            "Back up paths and SQLite databases into one verified archive.\n\n\
             Each --path is made absolute and normal once (no trailing /, no . or ..). A --path \
             that is a symlink is followed, as tar -h does for the top level, and said so: \
             the folder it points to is backed up, and restored there. A --path inside another \
             one (or given twice) is covered by it and backed up once. The --out folder, when \
             it lies inside a --path, is left out of the walk (and said so), and an in-place \
             restore leaves it as it is. Temp files (database snapshots and dumps) are created \
             in --out with O_EXCL|O_NOFOLLOW, mode 0600 and an unpredictable name; the partial \
             files of a killed create are removed by the next create or prune. A file deleted \
             while the backup runs is left out and counted in changed_while_read.",
        )
        .arg(flag::repeated(
            id::PATH,
            "P",
            clap::value_parser!(PathBuf),
            "A file or folder to back up (repeatable)",
        ))
        .arg(flag::repeated(
            id::VOLUME,
            "NAME",
            clap::value_parser!(String),
            "A Docker named volume to back up, read from its mount point as a --path is; restore --in-place stops the containers using it and starts them again (repeatable)",
        ))
        .arg(flag::repeated(
            id::EXCLUDE,
            "GLOB",
            clap::value_parser!(String),
            "Leave out matching names ('*.log'), or paths with a / ('cache/**') (repeatable)",
        ))
        .args(db::group(Databases::Many))
        .group(ArgGroup::new("inputs").args([id::PATH, id::VOLUME, db::DB, db::DB_ENV]).multiple(true).required(true))
        .arg(flag::switch(
            id::PG_GLOBALS,
            "Add the PostgreSQL server's roles and tablespaces (pg_dumpall --globals-only)",
        ))
        .arg(out_arg())
        .arg(flag::text(id::NAME, "NAME", "The archive's name, a template of {version}, {time} (UTC, 20261130T044100Z), {run} and {host} [default: ugw-backup-{host}-{time}]; a retry of this run finds its own archive under the same name and reuses it"))
        .arg(flag::text(id::APP_VERSION, "V", "The app version to record [default with --root: the version of ROOT's current release]"))
        .arg(flag::path(
            id::ROOT,
            "ROOT",
            "Record the version of ROOT's current release (ROOT/current -> releases/V, as ugw-swap --root lays them out) as --app-version",
        ))
        .arg(keep_arg().help("Prune to the newest N backups after success"))
        .arg(
            flag::value(
                id::COMPRESS,
                "CODEC",
                ["gzip", "zstd", "none"],
                "gzip (.tar.gz), zstd (.tar.zst) or none (.tar)",
            )
            .default_value("gzip"),
        )
        .arg(flag::value(
            id::LEVEL,
            "N",
            clap::value_parser!(i32).range(0..=19),
            "Compression level [default: 1 for gzip (0 to 12), 3 for zstd (1 to 19)]",
        ))
        .arg(flag::value(
            id::THREADS,
            "N",
            clap::value_parser!(u32).range(1..=256),
            "Compression threads [default: the number of CPUs]",
        ))
        .arg(flag::switch(
            id::STRICT,
            "Fail when a file changed while it was read",
        ))
        .arg(flag::switch(
            id::NO_SPACE_CHECK,
            "Skip the free-space check before writing",
        ))
}

fn restore_command() -> Command {
    Command::new(id::RESTORE)
        .about("Verify, then restore strictly into a folder (--to) or back in place (--in-place)")
        .long_about(
            "Verify, then restore strictly into a folder (--to) or back in place (--in-place).\n\n\
             --in-place reads everything it needs out of the archive into the temp folder \
             (TMPDIR) first, then swaps each path in by rename (a mount point, found in \
             /proc/self/mountinfo, gets its contents restored instead, a bind-mounted file its \
             bytes), writes each SQLite database through SQLite's backup API into the live file \
             (a process holding it open sees the restored rows) after copying what was there, \
             and restores PostgreSQL last, in one transaction. When a step fails, what the steps \
             before it changed is put back, so a failed restore leaves the state from before \
             it. A live path that is a symlink where the backup holds a folder, a file or a \
             database is refused (unsafe_input) before anything is touched. PostgreSQL goes back \
             into the database the manifest's connection fields name; --pg naming another \
             database needs --force with --in-place. A Docker volume (create --volume) goes \
             back into its mount point, once `docker volume inspect` says it is still where it \
             was backed up from, with the running containers that use it stopped for the \
             restore and started again afterwards, also when the restore fails (the step's \
             containers.stopped and containers.started say which).",
        )
        .arg(archive_arg())
        .arg(flag::path(
            id::TO,
            "DIR",
            "Restore into this folder (absent or empty, or any with --force)",
        ))
        .arg(flag::switch(
            id::IN_PLACE,
            "Put every path back where it was (the old one kept as <path>.ugw-before-restore until success)",
        ))
        .group(ArgGroup::new("where").args([id::TO, id::IN_PLACE]).required(true))
        .arg(flag::switch(
            id::FORCE,
            "Replace a non-empty --to folder; restore a backup of another app version; restore again what this run restored in place already",
        ))
        .arg(flag::text(
            id::PG,
            "URL",
            "Restore the PostgreSQL dump into this database [default with --in-place: the one backed up]",
        ))
        .arg(flag::text(
            id::EXPECT_APP_VERSION,
            "V",
            "Refuse a backup made by another app version (unless --force)",
        ))
}

/// The flags of each subcommand, parsed once: nothing below `run` reads them again.
#[derive(Debug)]
enum Options {
    Create(CreateOptions),
    Verify { archive: Option<PathBuf> },
    Restore(RestoreOptions),
    List { out: PathBuf },
    Prune(PruneOptions),
}

#[derive(Debug)]
struct CreateOptions {
    paths: Vec<PathBuf>,
    /// The `--volume` names (Docker named volumes).
    volumes: Vec<String>,
    excludes: Vec<glob::Glob>,
    /// The `--db` SQLite databases, absolute.
    sqlite: Vec<PathBuf>,
    pg: Vec<pg::Target>,
    pg_globals: bool,
    out: PathBuf,
    /// `--name`, a template.
    name: Option<String>,
    app_version: Option<String>,
    root: Option<PathBuf>,
    keep: Option<u32>,
    codec: Codec,
    level: i32,
    threads: usize,
    strict: bool,
    space_check: bool,
}

#[derive(Debug)]
struct RestoreOptions {
    archive: Option<PathBuf>,
    to: Option<PathBuf>,
    in_place: bool,
    force: bool,
    /// `--pg URL`, parsed (and its secrets registered) only when it is used.
    pg: Option<String>,
    expect_app_version: Option<String>,
}

#[derive(Debug)]
struct PruneOptions {
    out: PathBuf,
    keep: u32,
    prefix: Option<String>,
}

impl Options {
    fn from_matches(ctx: &Ctx, matches: &ArgMatches) -> Result<Self> {
        Ok(match matches.subcommand() {
            Some((id::CREATE, m)) => Options::Create(CreateOptions::from_matches(ctx, m)?),
            Some((id::VERIFY, m)) => Options::Verify {
                archive: m.get_one::<PathBuf>(id::ARCHIVE).cloned(),
            },
            Some((id::RESTORE, m)) => Options::Restore(RestoreOptions {
                archive: m.get_one::<PathBuf>(id::ARCHIVE).cloned(),
                to: m.get_one::<PathBuf>(id::TO).cloned(),
                in_place: m.get_flag(id::IN_PLACE),
                force: m.get_flag(id::FORCE),
                pg: m.get_one::<String>(id::PG).cloned(),
                expect_app_version: m.get_one::<String>(id::EXPECT_APP_VERSION).cloned(),
            }),
            Some((id::LIST, m)) => Options::List {
                out: required(m, id::OUT),
            },
            Some((id::PRUNE, m)) => Options::Prune(PruneOptions {
                out: required(m, id::OUT),
                keep: required(m, id::KEEP),
                prefix: m.get_one::<String>(id::PREFIX).cloned(),
            }),
            _ => {
                return Err(Error::usage(
                    "a subcommand is required: create, verify, restore, list or prune",
                ));
            }
        })
    }
}

impl CreateOptions {
    fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let mut sqlite = Vec::new();
        let mut pg = Vec::new();
        for url in DbUrl::all_from_matches(m, ctx.scrubber())? {
            match url {
                DbUrl::Sqlite(path) => sqlite.push(std::path::absolute(&path).unwrap_or(path)),
                DbUrl::Postgres(connection) => pg.push(pg::Target::new(connection)),
            }
        }
        let word: String = required(m, id::COMPRESS);
        // clap takes only the codecs' words.
        let codec = Codec::parse(&word)
            .ok_or_else(|| Error::usage(format!("--compress {word}: not gzip, zstd or none")))?;
        Ok(CreateOptions {
            paths: m
                .get_many::<PathBuf>(id::PATH)
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            volumes: m
                .get_many::<String>(id::VOLUME)
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            excludes: m
                .get_many::<String>(id::EXCLUDE)
                .into_iter()
                .flatten()
                .map(|g| glob::Glob::new(g))
                .collect(),
            sqlite,
            pg,
            pg_globals: m.get_flag(id::PG_GLOBALS),
            out: required(m, id::OUT),
            name: m.get_one::<String>(id::NAME).cloned(),
            app_version: m.get_one::<String>(id::APP_VERSION).cloned(),
            root: m.get_one::<PathBuf>(id::ROOT).cloned(),
            keep: m.get_one::<u32>(id::KEEP).copied(),
            codec,
            level: m
                .get_one::<i32>(id::LEVEL)
                .copied()
                .unwrap_or_else(|| codec.default_level()),
            threads: m.get_one::<u32>(id::THREADS).map_or_else(
                || std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                |t| *t as usize,
            ),
            strict: m.get_flag(id::STRICT),
            space_check: !m.get_flag(id::NO_SPACE_CHECK),
        })
    }
}

/// A flag that clap requires, or fills in with its default: always there (the one
/// invariant the `expect` states).
fn required<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> T {
    m.get_one::<T>(id)
        .cloned()
        .expect("the flag is required or has a default")
}

/// Run the subcommand.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    match Options::from_matches(ctx, matches)? {
        Options::Create(options) => run_create(ctx, options),
        Options::Verify { archive } => run_verify(ctx, archive.as_ref()),
        Options::Restore(options) => run_restore(ctx, &options),
        Options::List { out } => run_list(ctx, &out),
        Options::Prune(options) => run_prune(ctx, &options),
    }
}

fn lock_out(ctx: &Ctx, out: &Path) -> Result<ugw_shared::lock::LockGuard> {
    ugw_shared::lock::acquire(
        &out.join(LOCK_NAME),
        ctx.lock_timeout(),
        &ctx.cancel,
        &ctx.host,
        TOOL,
    )
}

/// The archive's name (`--name` with its fields filled in) and the app version it records
/// (`--app-version`, else `--root`'s current release, else none).
fn name_and_version(ctx: &Ctx, options: &CreateOptions) -> Result<(String, Option<String>)> {
    let stamp = ugw_shared::time::rfc3339_millis(std::time::SystemTime::now());
    // 20261130T044100Z: sortable, and safe in a file name.
    let time = format!(
        "{}Z",
        stamp
            .replace([':', '-'], "")
            .split('.')
            .next()
            .unwrap_or_default()
    );
    let app_version = match (&options.app_version, &options.root) {
        (Some(given), _) => Some(given.clone()),
        (None, Some(root)) => {
            let version = naming::current_release_version(root)?;
            ctx.reporter.info(&format!(
                "app version {version}: the current release of {}",
                root.display()
            ));
            Some(version)
        }
        (None, None) => None,
    };
    let name = naming::expand(
        options
            .name
            .as_deref()
            .unwrap_or("ugw-backup-{host}-{time}"),
        &naming::Fields {
            version: app_version.as_deref(),
            time: &time,
            run: ctx.this_run().run(),
            host: &ctx.host,
        },
    )?;
    Ok((name, app_version))
}

fn run_create(ctx: &mut Ctx, options: CreateOptions) -> Result<StepResult> {
    let (name, app_version) = name_and_version(ctx, &options)?;
    let (out, codec, keep) = (options.out.clone(), options.codec, options.keep);
    let volumes = volume_mount_points(ctx, &options.volumes)?;
    let mut paths = options.paths;
    paths.extend(volumes.iter().map(|(_, mount)| mount.clone()));
    let plan = create::Plan {
        paths,
        volumes,
        excludes: options.excludes,
        sqlite: options.sqlite,
        pg: options.pg,
        pg_globals: options.pg_globals,
        name,
        out: options.out,
        app_version,
        codec,
        level: options.level,
        threads: options.threads,
        strict: options.strict,
        space_check: options.space_check,
    };
    if ctx.dry_run {
        ctx.reporter
            .info(&format!("dry run: would back up into {}", out.display()));
        return Ok(StepResult::unchanged(
            json!({"would_create": out.join(format!("{}{}", plan.name, codec.extension())).display().to_string()}),
        ));
    }
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::io(format!("cannot create {}", out.display()), &e))?;
    let _lock = lock_out(ctx, &out)?;
    catalog::remove_partials(&ctx.reporter, &out);
    let (mut result, changed) = create::create(ctx, &plan)?;
    if let Some(keep) = keep {
        // The backups of this set: this host's, of the same paths and databases.
        let made = verify::read_manifest(Path::new(&result.archive))?.0;
        let set = catalog::Set {
            host: &ctx.host,
            prefix: None,
            like: Some(&made),
        };
        let pruned = catalog::prune(
            &ctx.reporter,
            &out,
            keep as usize,
            Some(Path::new(&result.archive)),
            &set,
        )?;
        result.pruned = pruned.removed;
    }
    Ok(StepResult::typed(changed, &result))
}

/// Each `--volume` with the folder its contents are in on this host (backed up as a path).
fn volume_mount_points(ctx: &Ctx, names: &[String]) -> Result<Vec<(String, PathBuf)>> {
    names
        .iter()
        .map(|name| {
            let mount = volume::mount_point(ctx, name)?;
            ctx.reporter.info(&format!(
                "volume {name}: backing up its mount point {}",
                mount.display()
            ));
            Ok((name.clone(), std::fs::canonicalize(&mount).unwrap_or(mount)))
        })
        .collect()
}

/// The archive named on the command line, or the one of this run's last `create` step on
/// this host (never a `verify` step's, never another run's).
fn archive_of(ctx: &Ctx, given: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.clone());
    }
    match from_record::last_create(ctx) {
        Some(made) => Ok(PathBuf::from(made.archive)),
        None => Err(Error::usage(format!(
            "no ARCHIVE given, and {}; name the archive",
            from_record::why_none(ctx)
        ))),
    }
}

fn verify_with_progress(ctx: &Ctx, archive: &Path) -> Result<verify::Verified> {
    let total = verify::read_manifest(archive)
        .map(|(m, _)| m.entries.iter().map(|e| e.size).sum::<u64>())
        .ok();
    let progress = ctx.reporter.progress(total).in_bytes();
    verify::verify(archive, &ctx.cancel, &progress)
}

fn run_verify(ctx: &mut Ctx, archive: Option<&PathBuf>) -> Result<StepResult> {
    if archive.is_none()
        && from_record::last_create(ctx).is_none()
        && let Some(planned) = from_record::planned_create(ctx)
    {
        ctx.reporter.info(&format!(
            "dry run: would verify {planned} (not created: dry-run)"
        ));
        return Ok(StepResult::unchanged(
            json!({"would_verify": planned, "created": false}),
        ));
    }
    let archive = archive_of(ctx, archive)?;
    let verified = verify_with_progress(ctx, &archive)?;
    ctx.reporter.info(&format!(
        "{}: whole ({} entries, sha256 {})",
        archive.display(),
        verified.entries,
        &verified.sha256[..16]
    ));
    Ok(StepResult::unchanged(json!({
        "archive": archive.display().to_string(),
        "sha256": verified.sha256,
        "bytes": verified.bytes,
        "entries": verified.entries,
        "app_version": verified.manifest.app_version,
        "verified": true,
    })))
}

/// The archive a restore puts back: the one named, or this run's own backup from the
/// record (`made`); or the step's result when there is nothing to do.
enum Chosen {
    Archive {
        archive: PathBuf,
        made: Option<BackupResult>,
    },
    Nothing(StepResult),
}

fn choose_archive(ctx: &Ctx, options: &RestoreOptions) -> Result<Chosen> {
    // The operator named the archive: it is restored as named. From the record, only the
    // backup this run made on this host, checked against its own manifest later.
    let (archive, made) = match &options.archive {
        Some(path) => (path.clone(), None),
        None => match from_record::last_create(ctx) {
            Some(made) => (PathBuf::from(&made.archive), Some(made)),
            // The failure path of a run that failed before its backup: nothing of this run's
            // to put back, so nothing is touched (as ugw-swap --rollback for a run that never
            // switched), and the failure path runs as written on any failed record.
            None if options.in_place && !ctx.record().ok => {
                ctx.reporter.info(&format!(
                    "{}: nothing to restore",
                    from_record::why_none(ctx)
                ));
                return Ok(Chosen::Nothing(StepResult::unchanged(
                    json!({"archive": null, "in_place": []}),
                )));
            }
            None => {
                return Err(Error::usage(format!(
                    "no ARCHIVE given, and {}; name the archive to restore",
                    from_record::why_none(ctx)
                )));
            }
        },
    };
    if made.is_some()
        && options.in_place
        && !options.force
        && from_record::restored_already(ctx, &archive)
    {
        // The node may have gone back to work since: a second restore would wipe its writes.
        ctx.reporter.info(&format!(
            "this run already restored {} in place: nothing more to restore (--force restores it again)",
            archive.display()
        ));
        return Ok(Chosen::Nothing(StepResult::unchanged(
            json!({"archive": archive.display().to_string(), "in_place": [], "restored_already": true}),
        )));
    }
    Ok(Chosen::Archive { archive, made })
}

fn run_restore(ctx: &mut Ctx, options: &RestoreOptions) -> Result<StepResult> {
    let (archive, made) = match choose_archive(ctx, options)? {
        Chosen::Archive { archive, made } => (archive, made),
        Chosen::Nothing(result) => return Ok(result),
    };
    let verified = verify_with_progress(ctx, &archive)?;
    if let Some(made) = &made {
        from_record::check_made_by_this_run(
            ctx,
            made,
            &archive,
            &verified.sha256,
            &verified.manifest,
        )?;
    }
    restore::check_app_version(
        &verified.manifest,
        options.expect_app_version.as_deref(),
        options.force,
    )?;
    let roots = restore::roots(&verified.manifest);
    if ctx.dry_run {
        ctx.reporter
            .info(&format!("dry run: would restore {}", roots.join(", ")));
        return Ok(StepResult::unchanged(
            json!({"archive": archive.display().to_string(), "would_restore": roots}),
        ));
    }
    let pg_target = options
        .pg
        .as_ref()
        .map(|url| pg::Target::parse(url, ctx.scrubber()))
        .transpose()?;
    // Checked before anything is touched: the database each dump goes into.
    let pg_targets = restore::pg_targets(
        ctx,
        &verified.manifest,
        pg_target.as_ref(),
        options.in_place,
        options.force,
    )?;
    let result = match &options.to {
        Some(dir) => restore_to_dir(ctx, &archive, &verified, dir, options, &pg_targets)?,
        None => restore_in_place(ctx, &archive, &verified, &pg_targets)?,
    };
    Ok(StepResult::changed(result))
}

/// `restore --to DIR`: the files into the folder, and the dumps into `--pg` when given.
fn restore_to_dir(
    ctx: &mut Ctx,
    archive: &Path,
    verified: &verify::Verified,
    dir: &Path,
    options: &RestoreOptions,
    pg_targets: &[pg::Target],
) -> Result<serde_json::Value> {
    let summary = restore::to_dir(ctx, archive, dir, options.force)?;
    if options.pg.is_some() {
        restore::restore_pg(ctx, archive, &verified.manifest, pg_targets)?;
    }
    ctx.reporter.info(&format!(
        "restored {} files into {}",
        summary.files,
        dir.display()
    ));
    Ok(json!({
        "archive": archive.display().to_string(),
        "to": dir.display().to_string(),
        "files": summary.files,
        "dirs": summary.dirs,
        "symlinks": summary.symlinks,
        "hardlinks": summary.hardlinks,
        "bytes": summary.bytes,
    }))
}

/// `restore --in-place`: every path, database and dump back where it was.
fn restore_in_place(
    ctx: &mut Ctx,
    archive: &Path,
    verified: &verify::Verified,
    pg_targets: &[pg::Target],
) -> Result<serde_json::Value> {
    let volumes = verified.manifest.volumes();
    check_volumes_in_place(ctx, &verified.manifest)?;
    // The containers that use a volume are stopped for its restore, and the ones stopped are
    // started again whatever the restore did (the record says which).
    let mut paused = volume::stop_users(ctx, &volumes)?;
    let restored = restore::in_place(ctx, archive, &verified.manifest, pg_targets);
    volume::start_again(ctx, &mut paused);
    let containers = json!({"volumes": volumes, "containers": paused});
    let restored = restored.map_err(|e| with_containers(e, &volumes, &containers))?;
    if !restored.is_empty() {
        ctx.reporter
            .info(&format!("restored in place: {}", restored.join(", ")));
    }
    let mut result = json!({
        "archive": archive.display().to_string(),
        "in_place": restored,
        "sqlite": verified.manifest.sqlite.iter().map(|s| s.path.shown()).collect::<Vec<_>>(),
        "pg": pg_targets.iter().map(|t| t.shown.clone()).collect::<Vec<_>>(),
    });
    if !volumes.is_empty() {
        result["volumes"] = containers["volumes"].clone();
        result["containers"] = containers["containers"].clone();
    }
    Ok(result)
}

/// Each volume the archive holds is still where it was backed up from: the same volume's
/// mount point on this host (a volume removed, or recreated elsewhere, is not written into).
fn check_volumes_in_place(ctx: &Ctx, manifest: &manifest::Manifest) -> Result<()> {
    for root in &manifest.roots {
        let Some(name) = &root.volume else { continue };
        let mount = volume::mount_point(ctx, name)?;
        // create backed up the resolved folder (/var/lib/docker may be a symlink); a link
        // planted at the mount point itself is the in-place restore's to refuse.
        let resolved = std::fs::canonicalize(&mount).ok();
        if mount != root.path.path() && resolved != Some(root.path.path()) {
            return Err(Error::bad_record(format!(
                "the archive holds Docker volume {name} from {}, but that volume's mount point \
                 is now {}: nothing restored",
                root.path.shown(),
                mount.display()
            )));
        }
    }
    Ok(())
}

/// A failed in-place restore of volumes still says which containers it stopped and started.
fn with_containers(error: Error, volumes: &[String], containers: &serde_json::Value) -> Error {
    if volumes.is_empty() {
        return error;
    }
    let mut result = error.result.clone().unwrap_or_else(|| json!({}));
    if let Some(fields) = result.as_object_mut() {
        fields.insert("volumes".into(), json!(volumes));
        fields.insert("containers".into(), containers["containers"].clone());
    }
    error.with_result(result)
}

fn run_list(ctx: &Ctx, out: &Path) -> Result<StepResult> {
    use std::io::IsTerminal as _;
    let backups = catalog::list(out)?;
    // For people: a table on a terminal; a pipe or a log gets only the record.
    if !ctx.reporter.is_quiet() && std::io::stderr().is_terminal() {
        ctx.reporter.block(&table::render(out, &backups));
    }
    Ok(StepResult::unchanged(
        json!({"out": out.display().to_string(), "backups": backups}),
    ))
}

fn run_prune(ctx: &mut Ctx, options: &PruneOptions) -> Result<StepResult> {
    let out = &options.out;
    let keep = options.keep as usize;
    let spare = archive_of(ctx, None).ok();
    if ctx.dry_run {
        return Ok(StepResult::unchanged(json!({"would_keep": keep})));
    }
    let _lock = lock_out(ctx, out)?;
    let set = catalog::Set {
        host: &ctx.host,
        prefix: options.prefix.as_deref(),
        like: None,
    };
    let pruned = catalog::prune(&ctx.reporter, out, keep, spare.as_deref(), &set)?;
    ctx.reporter.info(&format!(
        "pruned {} backup(s) in {}",
        pruned.removed.len(),
        out.display()
    ));
    Ok(StepResult {
        changed: !pruned.removed.is_empty(),
        ..StepResult::unchanged(json!({
            "out": out.display().to_string(),
            "removed": pruned.removed,
            "not_removed": pruned.not_removed,
            "kept": keep,
        }))
    })
}
