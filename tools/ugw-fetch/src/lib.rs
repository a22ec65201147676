//! ugw-fetch: replaces `curl -o /tmp/app-new URL && install -m 755 /tmp/app-new …` with no
//! checksum. It downloads a release artifact into a temp file beside its final name, hashed
//! as it streams, verifies it (fail closed), optionally unpacks and smoke-tests it, and only
//! then gives it its final name. A verified artifact already staged is not fetched again.
#![forbid(unsafe_code)]

mod download;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod image;
mod keep;
mod side_clients;
mod signature;
mod smoke;
mod sums;

use clap::{ArgGroup, ArgMatches, Command};
use download::{Downloaded, Limits};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ugw_shared::atomic::AtomicFile;
use ugw_shared::cli::flag;
use ugw_shared::digest::{parse_sha256, sha256_file};
use ugw_shared::http::{self, Header, HttpClient, HttpConfig, Request};
use ugw_shared::results::{FetchPlanned, Fetched};
use ugw_shared::runner::{RunSpec, run as run_command};
use ugw_shared::space::human_bytes;
use ugw_shared::time::human;
use ugw_shared::tree_manifest::{FETCH_MARKER, TreeManifest};
use ugw_shared::{Ctx, Error, ErrorKind, Result, StepResult, lock, tool_command, unpack};

const EXAMPLES: &str = "\
Examples:
  # Fetch a release, check it against the published SHA256SUMS, unpack it into /opt/app/staging/:
  ugw-fetch --url \"$BASE/app-$V-linux-amd64.tar.gz\" --sha256-url \"$BASE/SHA256SUMS\" \\
    --dest /opt/app/staging --extract

  # The same without the archive's top folder, smoke-tested before it gets its name:
  ugw-fetch --url \"$BASE/app-$V-linux-amd64.tar.gz\" --sha256-url \"$BASE/SHA256SUMS\" \\
    --dest /opt/app/staging --extract --strip-components 1 --smoke 'sh {}/bin/app --version'

  # A signed checksum file (minisign), a token from the environment and a private CA add:
  #   --minisign-pubkey RWQf6LRC… --minisign-sig-url \"$BASE/SHA256SUMS.minisig\"
  #   --header-env 'Authorization=RELEASE_TOKEN' --cacert /etc/app/ca.pem

  # A container image, pulled through docker and checked against its digest (or a list's):
  ugw-fetch --image \"$REGISTRY/app:$V\" --digest \"$DIGEST\" --smoke '/app/bin/app --version'";

/// How much of a checksum or signature file is read (they are a few lines).
const SMALL_FILE_LIMIT: usize = 1024 * 1024;

/// This tool as `cli` and xtask see it: a 10-minute default deadline.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run)
        .default_timeout("10m")
        .version_was_the_label()
}

/// Flag ids: each named once, for the command and for [`Options`].
mod id {
    ugw_shared::flag_ids! {
        URL, DEST, NAME, RELEASE,
        SHA256, SHA256_URL, SHA256_FILE, NO_VERIFY,
        /// The group of the three ways to give the digest (at most one).
        CHECKSUM,
        MINISIGN_PUBKEY, MINISIGN_SIG_URL,
        EXTRACT, STRIP_COMPONENTS, ALLOW_ABSOLUTE_SYMLINKS, MODE, SMOKE, SMOKE_TIMEOUT, MAX_BYTES,
        KEEP, SUMS_HEADER, SUMS_HEADER_ENV,
        IMAGE, DIGEST, REGISTRY_LOGIN_ENV,
    }
}

/// The flags only a file fetch reads: `--image` refuses them.
const FILE_ONLY: [&str; 11] = [
    id::URL,
    id::DEST,
    id::NAME,
    id::SHA256,
    id::NO_VERIFY,
    id::EXTRACT,
    id::STRIP_COMPONENTS,
    id::ALLOW_ABSOLUTE_SYMLINKS,
    id::MODE,
    id::MAX_BYTES,
    id::KEEP,
];

/// The clap command: the common flags, then this tool's own.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one flag after another: a builder reads best whole"
)]
pub fn command() -> Command {
    tool_command(
        "ugw-fetch",
        "Download a release artifact, verify it (fail closed), stage it atomically, unpack and smoke-test it",
    )
    .long_about(
        "Download a release artifact into a temp file in --dest, hashed while it streams, \
         fsync'd and verified against --sha256, a SHA256SUMS file or a minisign signature, \
         then renamed to its final name: a partial or unverified download never carries it. \
         Transient failures are retried with backoff and resumed with Range/If-Range within \
         --timeout. An artifact already staged with the right digest is not fetched again.\n\n\
         An extracted folder carries a marker, .ugw-fetch, with the archive's digest and a \
         manifest of every entry (path, type, SHA-256, executable bit, link target); the \
         step records the manifest's digest (manifest_sha256), which ugw-swap checks the \
         folder against before it publishes it. A folder whose entries no longer match its \
         manifest is not taken for staged: it is fetched and extracted again.\n\n\
         Headers go only to the origin they were given for: --header and --header-env to \
         the origin of --url (a redirect to another origin drops them); a --sha256-url or \
         --minisign-sig-url on another origin gets only --sums-header and \
         --sums-header-env, one on --url's origin gets both.",
    )
    .after_long_help(EXAMPLES)
    .next_help_heading("What and where")
    .arg(
        flag::text(id::URL, "URL", "The artifact: http://, https:// or file://")
            .required_unless_present(id::IMAGE),
    )
    .arg(
        flag::path(id::DEST, "DIR", "The staging folder (created if missing)")
            .required_unless_present(id::IMAGE),
    )
    .arg(flag::text(
        id::NAME,
        "NAME",
        "The staged file's name [default: the URL's file name]",
    ))
    .arg(flag::text(
        id::RELEASE,
        "V",
        "The version label [default: parsed from the file name, e.g. v1.2.3, 2026.5.17.post4]",
    ))
    .next_help_heading("Integrity (one is required, unless --no-verify)")
    .arg(flag::text(id::SHA256, "HEX", "The artifact's SHA-256"))
    .arg(flag::text(
        id::SHA256_URL,
        "URL",
        "A SHA256SUMS file (sha256sum or BSD format, or a lone .sha256 hash) to take the digest from",
    ))
    .arg(flag::path(id::SHA256_FILE, "PATH", "The same, from a local file"))
    .arg(flag::switch(
        id::NO_VERIFY,
        "Stage without any check (recorded as \"verified\": false)",
    ))
    .group(ArgGroup::new(id::CHECKSUM).args([id::SHA256, id::SHA256_URL, id::SHA256_FILE]))
    .arg(
        flag::text(
            id::MINISIGN_PUBKEY,
            "KEY",
            "A minisign public key (base64, or a .pub file) the signature must verify with",
        )
        .requires(id::MINISIGN_SIG_URL),
    )
    .arg(
        flag::text(
            id::MINISIGN_SIG_URL,
            "URL",
            "The .minisig of the checksum file when one is given, else of the artifact. \
             Both algorithms minisign 0.11 verifies are accepted: prehashed (its default) \
             is checked as the file streams; legacy (minisign -S -l) signs the whole \
             file, which is checked from the staged temp file, mapped, never read into \
             memory. The trusted comment must verify too",
        )
        .requires(id::MINISIGN_PUBKEY),
    )
    .next_help_heading("Staging")
    .arg(flag::switch(
        id::EXTRACT,
        "Unpack a .tar.gz, .tgz, .tar, .tar.zst, .tar.xz or .tar.bz2 into DIR/<name>/, strictly (nothing escapes it)",
    ))
    .arg(
        flag::value(
            id::STRIP_COMPONENTS,
            "N",
            clap::value_parser!(usize),
            "Drop N leading path components of every archive entry",
        )
        .requires(id::EXTRACT),
    )
    .arg(
        flag::switch(
            id::ALLOW_ABSOLUTE_SYMLINKS,
            "Let the release hold symlinks to absolute paths (a venv's bin/python3); nothing is ever written through a link, and relative links must still stay inside",
        )
        .requires(id::EXTRACT),
    )
    .arg(
        flag::file_mode(id::MODE, "The staged file's mode (e.g. 755) [default: 644]",
        )
        .conflicts_with(id::EXTRACT),
    )
    .arg(
        flag::text(
            id::SMOKE,
            "CMD",
            "Run CMD (sh -c; {} is the new file or folder) before the final rename; failing it removes the artifact",
        )
        .long_help(
            "Run CMD (sh -c) before the final rename; failing it removes the artifact. {} is \
             the new file or folder, quoted as one word; the path is also in \
             $UGW_ARTIFACT and $1. Do not put {} inside a quoted string (sh -c \"test -f \
             {}\"): there it is shell text a second shell reads again, so it is refused \
             when the path holds shell metacharacters. In a shell string, use the \
             variable in single quotes: sh -c 'test -f \"$UGW_ARTIFACT\"'.",
        ),
    )
    .arg(
        flag::duration(id::SMOKE_TIMEOUT, "How long the smoke test may take").default_value("30s"),
    )
    .arg(flag::value(
        id::MAX_BYTES,
        "N",
        clap::value_parser!(u64),
        "Refuse an artifact larger than N bytes",
    ))
    .arg(flag::count(id::KEEP, "After a successful fetch, remove the folders ugw-fetch extracted into --dest beyond the N newest (never this one, one a ugw-fetch step of this run staged, a downloaded file, or anything ugw-fetch did not make)",
    ))
    .next_help_heading("Container images")
    .arg(
        flag::text(
            id::IMAGE,
            "REF",
            "Pull this image (repo:tag or repo@sha256:…) through the docker CLI instead of --url; it must have --digest, REF's digest or the one --sha256-url/--sha256-file lists",
        )
        .long_help(
            "Pull the image REF ([host[:port]/]repo[:tag][@sha256:…]) through the docker \
             CLI instead of fetching --url. Integrity fails closed: the digest comes from \
             REF, from --digest, or from the DIGEST  repo:tag line of --sha256-url or \
             --sha256-file (a minisign signature over that list verifies as for a \
             SHA256SUMS file). A tag is pulled by its name and the image's RepoDigests \
             must then hold the digest, else the step fails (checksum_mismatch) and the \
             tag is removed (with the image, unless something else uses it). An image \
             present with that digest is not pulled (changed: false). --smoke CMD runs in \
             a throwaway container (docker run --rm --network none --pull never): CMD is \
             split at whitespace, its first word the entrypoint and the rest its \
             arguments, with no shell (an image may have none) and no {}. The step's \
             result names image, digest, reference (image@digest, what ugw-swap \
             --compose pins) and version (--release, else the tag, else the \
             org.opencontainers.image.version label). Registry credentials: the docker \
             CLI's own config (DOCKER_CONFIG), or --registry-login-env.",
        )
        .conflicts_with_all(FILE_ONLY),
    )
    .arg(
        flag::text(
            id::DIGEST,
            "sha256:HEX",
            "The digest the --image must have (its manifest's, as docker pull prints it)",
        )
        .requires(id::IMAGE)
        .conflicts_with_all([id::SHA256_URL, id::SHA256_FILE]),
    )
    .arg(
        flag::text(
            id::REGISTRY_LOGIN_ENV,
            "USER=ENVVAR",
            "Log in to REF's registry as USER with the password in ENVVAR (docker login --password-stdin into a private DOCKER_CONFIG removed afterwards; never shown)",
        )
        .requires(id::IMAGE),
    )
    .next_help_heading("HTTP")
    .args(http::args())
    .args(side_clients::args())
}

/// What to fetch: a file (`--url`) or a container image (`--image`).
enum Fetch {
    File(Options),
    Image(ImageFetch),
}

/// `--image`: its options, and where its digest may be listed.
struct ImageFetch {
    options: image::Options,
    integrity: Integrity,
    http: HttpConfig,
    sums_headers: Vec<Header>,
}

impl Fetch {
    fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let Some(raw) = m.get_one::<String>(id::IMAGE) else {
            return Options::from_matches(ctx, m).map(Fetch::File);
        };
        image::refuse_http_headers(&http::HttpFlags::from_matches(m))?;
        let text = |id: &str| m.get_one::<String>(id).cloned();
        let reference = image::Reference::parse(raw)?;
        let digest = text(id::DIGEST)
            .map(|given| {
                image::normalise_digest(&given).ok_or_else(|| {
                    Error::usage(format!(
                        "--digest '{given}' is not sha256: and 64 hexadecimal digits"
                    ))
                })
            })
            .transpose()?;
        if let (Some(given), Some(in_ref)) = (&digest, &reference.digest)
            && given != in_ref
        {
            return Err(Error::usage(format!(
                "--digest {given} is not the digest --image names ({in_ref})"
            )));
        }
        let integrity = Integrity::from_matches(m);
        if digest.is_none() && reference.digest.is_none() && !integrity.listed() {
            return Err(Error::usage(format!(
                "no integrity check for --image {raw}: give it as repo@sha256:…, or give \
                 --digest sha256:…, --sha256-url or --sha256-file (nothing was pulled)"
            )));
        }
        let login = text(id::REGISTRY_LOGIN_ENV)
            .map(|raw| registry_login(&raw))
            .transpose()?;
        let options = image::Options {
            reference,
            digest,
            release: text(id::RELEASE),
            smoke: text(id::SMOKE),
            smoke_timeout: *m
                .get_one::<Duration>(id::SMOKE_TIMEOUT)
                .expect("clap: --smoke-timeout has a default"),
            login,
        };
        Ok(Fetch::Image(ImageFetch {
            options,
            integrity,
            http: HttpConfig::from_matches(m, ctx.scrubber())?,
            sums_headers: sums_headers(m)?,
        }))
    }
}

/// `--registry-login-env USER=ENVVAR`: the user, and the password ENVVAR holds.
fn registry_login(raw: &str) -> Result<(String, String)> {
    let Some((user, var)) = raw.split_once('=') else {
        return Err(Error::usage(format!(
            "--registry-login-env '{raw}' is not 'USER=ENVVAR'"
        )));
    };
    let password = std::env::var(var.trim()).map_err(|_| {
        Error::usage(format!(
            "--registry-login-env {raw}: environment variable {} is not set (or not UTF-8)",
            var.trim()
        ))
    })?;
    Ok((user.trim().to_string(), password))
}

/// `--sums-header*`, read.
fn sums_headers(m: &ArgMatches) -> Result<Vec<Header>> {
    let all = |id: &str| -> Vec<String> {
        m.get_many::<String>(id)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    };
    side_clients::sums_headers(&all(id::SUMS_HEADER), &all(id::SUMS_HEADER_ENV))
}

/// Everything the flags say, parsed once: nothing below this file sees `ArgMatches`.
struct Options {
    plan: Plan,
    integrity: Integrity,
    /// `--keep N`: the extracted folders to keep.
    keep: Option<usize>,
    /// The shared HTTP flags (`--header*` for `--url`'s origin).
    http: HttpConfig,
    /// `--sums-header*`, for the checksum and signature files.
    sums_headers: Vec<Header>,
    /// `--url` as given (the clients compare origins with it).
    url: String,
}

/// What the artifact is to be checked against, as the flags give it.
struct Integrity {
    no_verify: bool,
    sha256: Option<String>,
    sha256_url: Option<String>,
    sha256_file: Option<PathBuf>,
    /// `--minisign-pubkey` and `--minisign-sig-url` (clap: one needs the other).
    minisign: Option<(String, String)>,
    /// `--name`: looked up in a checksum file before the URL's own name.
    name: Option<String>,
}

impl Options {
    fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let text = |id: &str| m.get_one::<String>(id).cloned();
        let integrity = Integrity::from_matches(m);
        if !integrity.given() && !integrity.no_verify {
            return Err(Error::usage(
                "no integrity check: give --sha256, --sha256-url, --sha256-file or a minisign key \
                 (or --no-verify to stage it unchecked)",
            ));
        }
        let plan = Plan::from_matches(ctx, m)?;
        let http = HttpConfig::from_matches(m, ctx.scrubber())?;
        let sums_headers = sums_headers(m)?;
        Ok(Options {
            plan,
            integrity,
            keep: m.get_one::<u32>(id::KEEP).map(|n| *n as usize),
            http,
            sums_headers,
            url: text(id::URL).expect("clap: --url is required"),
        })
    }
}

impl Integrity {
    fn from_matches(m: &ArgMatches) -> Self {
        let text = |id: &str| m.get_one::<String>(id).cloned();
        Integrity {
            no_verify: m.get_flag(id::NO_VERIFY),
            sha256: text(id::SHA256),
            sha256_url: text(id::SHA256_URL),
            sha256_file: m.get_one::<PathBuf>(id::SHA256_FILE).cloned(),
            minisign: text(id::MINISIGN_PUBKEY).zip(text(id::MINISIGN_SIG_URL)),
            name: text(id::NAME),
        }
    }

    /// Whether a checksum file is given (a list of digests to look the artifact up in).
    fn listed(&self) -> bool {
        self.sha256_url.is_some() || self.sha256_file.is_some()
    }

    /// Whether any check is given: a digest, a checksum file or a minisign key.
    fn given(&self) -> bool {
        self.sha256.is_some()
            || self.sha256_url.is_some()
            || self.sha256_file.is_some()
            || self.minisign.is_some()
    }
}

/// Where the artifact comes from.
enum Source {
    Http(String),
    File(PathBuf),
}

/// The flags, checked.
struct Plan {
    source: Source,
    /// The URL without user info, for the record.
    shown_url: String,
    dest: PathBuf,
    /// The artifact's file name (what a checksum file lists).
    file_name: String,
    /// Where it ends up: the file, or the folder it is unpacked into.
    final_path: PathBuf,
    version: Option<String>,
    extract: bool,
    strip_components: usize,
    allow_absolute_symlinks: bool,
    mode: u32,
    smoke: Option<String>,
    smoke_timeout: Duration,
    max_bytes: Option<u64>,
    lock_timeout: Duration,
}

impl Plan {
    fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let raw = m
            .get_one::<String>(id::URL)
            .expect("clap: --url is required");
        ctx.scrubber().add_url_secrets(raw);
        let (source, url) = source(raw, ctx)?;
        let given_name = m.get_one::<String>(id::NAME).cloned();
        let url_name = url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_string))
            .map(|n| {
                percent_encoding::percent_decode_str(&n)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .filter(|n| !n.is_empty());
        // The URL's name, decoded, names files in --dest (the temp file, the archive): one
        // that is not a plain name (`..%2Fvictim%2Fx.tar.gz`, `.`, `..`) would put them
        // elsewhere. With --name it is only a checksum-file lookup key, and --name is used.
        let url_name = match (url_name, &given_name) {
            (Some(name), _) if plain_name(&name) => Some(name),
            (Some(name), None) => {
                return Err(Error::usage(format!(
                    "the file name {name:?} in {} is not a plain name (no '/', not '.' or \
                     '..'); give --name",
                    shown(&url)
                )));
            }
            _ => None,
        };
        let file_name = url_name.or_else(|| given_name.clone()).ok_or_else(|| {
            Error::usage(format!("{} has no file name; give --name", shown(&url)))
        })?;
        let extract = m.get_flag(id::EXTRACT);
        let staged_name = given_name.unwrap_or_else(|| {
            if extract {
                archive_stem(&file_name).to_string()
            } else {
                file_name.clone()
            }
        });
        check_name(&staged_name)?;
        for name in [&staged_name, &file_name] {
            check_name_fits(name)?;
        }
        let dest = m
            .get_one::<PathBuf>(id::DEST)
            .expect("clap: --dest is required")
            .clone();
        let version = m
            .get_one::<String>(id::RELEASE)
            .cloned()
            .or_else(|| ugw_shared::version::from_file_name(&file_name));
        Ok(Plan {
            source,
            shown_url: shown(&url),
            final_path: dest.join(&staged_name),
            dest,
            file_name,
            version,
            extract,
            strip_components: m
                .get_one::<usize>(id::STRIP_COMPONENTS)
                .copied()
                .unwrap_or(0),
            allow_absolute_symlinks: m.get_flag(id::ALLOW_ABSOLUTE_SYMLINKS),
            mode: m.get_one::<u32>(id::MODE).copied().unwrap_or(0o644),
            smoke: m.get_one::<String>(id::SMOKE).cloned(),
            smoke_timeout: *m
                .get_one::<Duration>(id::SMOKE_TIMEOUT)
                .expect("clap: --smoke-timeout has a default"),
            max_bytes: m.get_one::<u64>(id::MAX_BYTES).copied(),
            lock_timeout: ctx.lock_timeout(),
        })
    }
}

fn source(raw: &str, ctx: &Ctx) -> Result<(Source, url::Url)> {
    if raw.starts_with("file://") {
        let url = url::Url::parse(raw)
            .map_err(|e| Error::usage(format!("'{raw}' is not a valid URL ({e})")))?;
        let path = url
            .to_file_path()
            .map_err(|()| Error::usage(format!("'{raw}' is not a local file URL")))?;
        return Ok((Source::File(path), url));
    }
    let url = http::check_url(raw, ctx.scrubber())?;
    Ok((Source::Http(raw.to_string()), url))
}

/// The URL for the record, as the one redaction policy shows it (no user info).
fn shown(url: &url::Url) -> String {
    ugw_shared::scrub::redacted_url(url)
}

/// An archive's name without its archive ending: the folder it is unpacked into.
fn archive_stem(name: &str) -> &str {
    [".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar"]
        .iter()
        .find_map(|ending| name.strip_suffix(ending))
        .unwrap_or(name)
}

/// A name that stays in the folder it is joined to: one path component, not `.` or `..`.
fn plain_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0'))
}

/// The longest name a file may have (`NAME_MAX` on Linux file systems).
const NAME_MAX: usize = 255;
/// What ugw's temp names add to a name: `.NAME.XXXXXXXXXX.unpack`.
const TEMP_NAME_EXTRA: usize = ".".len() + ".XXXXXXXXXX".len() + ".unpack".len();

/// A name long enough that its temp name cannot be made is a usage error, said before
/// anything is requested (not an I/O error halfway through the download).
fn check_name_fits(name: &str) -> Result<()> {
    let most = NAME_MAX - TEMP_NAME_EXTRA;
    if name.len() > most {
        return Err(Error::usage(format!(
            "the name '{name}' is {} bytes long; at most {most} fit (its temp name \
             .NAME.XXXXXXXXXX.unpack must fit in {NAME_MAX}); give a shorter --name",
            name.len()
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.starts_with('.')
    {
        return Err(Error::usage(format!(
            "'{name}' cannot be a staged file's name (no '/', not hidden); give --name"
        )));
    }
    Ok(())
}

/// Download, verify, stage (or pull and check an image).
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    match Fetch::from_matches(ctx, matches)? {
        Fetch::File(options) => fetch_file(ctx, options),
        Fetch::Image(fetch) => fetch_image(ctx, &fetch),
    }
}

/// `--image`: the digest it must have (REF's, `--digest`'s, or the one the checksum list
/// gives it, that list verified first when signed), then the pull.
fn fetch_image(ctx: &mut Ctx, fetch: &ImageFetch) -> Result<StepResult> {
    let options = &fetch.options;
    let expected = match (&options.reference.digest, &options.digest) {
        (Some(digest), _) | (None, Some(digest)) => digest.clone(),
        (None, None) => {
            let clients = side_clients::Clients::new(
                fetch.http.clone(),
                &fetch.sums_headers,
                "",
                ctx.scrubber(),
            )?;
            let limits = Limits {
                max_bytes: None,
                deadline: ctx.step_deadline(),
            };
            let Some(text) = checksum_file(ctx, &fetch.integrity, &clients, limits)? else {
                // Fetch::from_matches refused an --image with no digest and no list.
                return Err(Error::usage("--image needs a digest or a checksum list"));
            };
            if let Some(signed) = signature(ctx, &fetch.integrity, &clients, limits)? {
                signed.verify_bytes(&text, "the checksum list")?;
            }
            image::listed_digest(&String::from_utf8_lossy(&text), &options.reference)?
        }
    };
    image::run(ctx, options, &expected)
}

/// A file: download, verify, stage.
fn fetch_file(ctx: &mut Ctx, options: Options) -> Result<StepResult> {
    let Options {
        plan,
        integrity,
        keep,
        mut http,
        sums_headers,
        url,
    } = options;
    let no_verify = integrity.no_verify;
    http.reuse_connections = true;
    let clients = side_clients::Clients::new(http, &sums_headers, &url, ctx.scrubber())?;
    let client = &clients.artifact;
    let deadline = ctx.step_deadline();
    let limits = Limits {
        max_bytes: plan.max_bytes,
        deadline,
    };
    let check = Check::resolve(ctx, &integrity, &clients, &plan, limits)?;

    // --keep prunes under the staging folder's lock, taken below, even when nothing is fetched.
    if let Some(staged) = already_staged(ctx, &plan, &check, no_verify)?
        && (keep.is_none() || ctx.dry_run)
    {
        return Ok(staged);
    }
    if ctx.dry_run {
        return Ok(dry_run(ctx, &plan, &check));
    }
    std::fs::create_dir_all(&plan.dest)
        .map_err(|e| Error::io(format!("cannot create {}", plan.dest.display()), &e))?;
    let _lock = lock::acquire(
        &plan.dest.join(".ugw-fetch.lock"),
        plan.lock_timeout,
        &ctx.cancel,
        &ctx.host,
        &ctx.tool,
    )?;
    // Again under the lock: a concurrent fetch of the same artifact may have staged it while
    // this one waited, and it is not downloaded twice.
    let mut result = if let Some(staged) = already_staged(ctx, &plan, &check, no_verify)? {
        staged
    } else {
        remove_stale_temps(ctx, &plan);
        stage(ctx, &plan, client, &check, limits, no_verify)?
    };
    if let Some(keep) = keep {
        // The fetch succeeded: a prune that fails says so and leaves it at that.
        match keep::prune(ctx, &plan.dest, keep, &plan.final_path) {
            Ok(pruned) if !pruned.is_empty() => {
                // Beside the typed result: the names removed, for the record's reader.
                result.result["pruned"] = json!(pruned);
                result.changed = true;
            }
            Ok(_) => {}
            Err(e) => ctx
                .reporter
                .warn(&format!("--keep {keep}: pruning failed: {}", e.message)),
        }
    }
    Ok(result)
}

/// `--dry-run` when the artifact is not staged yet: the step carries what it would have
/// staged, so that later tools dry-run on it (ugw(7): a whole pipeline can be dry-run).
fn dry_run(ctx: &Ctx, plan: &Plan, check: &Check) -> StepResult {
    let what = if plan.extract {
        "fetch and extract"
    } else {
        "fetch"
    };
    let digest = check.sha256.as_deref().map_or_else(String::new, |d| {
        format!(", expecting sha256 {}…", &d[..12.min(d.len())])
    });
    ctx.reporter.info(&format!(
        "dry run: would {what} {} into {}{digest}; nothing fetched",
        plan.shown_url,
        plan.final_path.display()
    ));
    StepResult::typed(
        false,
        &FetchPlanned {
            url: plan.shown_url.clone(),
            path: plan.final_path.display().to_string(),
            version: plan.version.clone(),
            sha256: check.sha256.clone(),
            extract: plan.extract,
            fetched: false,
        },
    )
}

/// The step's result when the artifact is staged already with the expected digest and the
/// options that shape staging, and passes `--smoke` (run on it again), else `None`.
fn already_staged(
    ctx: &Ctx,
    plan: &Plan,
    check: &Check,
    no_verify: bool,
) -> Result<Option<StepResult>> {
    let Some(expected) = &check.sha256 else {
        return Ok(None);
    };
    let Some((bytes, manifest_sha256)) = staged_already(plan, expected)? else {
        return Ok(None);
    };
    if let Some(smoke) = &plan.smoke {
        smoke_test(
            ctx,
            smoke,
            &plan.final_path,
            plan.smoke_timeout,
            Smoked::Staged,
        )?;
    }
    ctx.reporter.info(&format!(
        "{} is already staged with sha256 {}…; nothing to fetch",
        plan.final_path.display(),
        &expected[..12]
    ));
    let mut result = fetched(plan, expected, bytes, !no_verify, false);
    result.manifest_sha256 = manifest_sha256;
    Ok(Some(StepResult::typed(false, &result)))
}

/// The options that shape an extracted folder, as its marker records them: a rerun with other
/// ones stages it again.
fn staging_options(plan: &Plan) -> serde_json::Value {
    json!({"strip_components": plan.strip_components})
}

/// Temp files and unpack folders of this artifact left by a run that was killed (-9, a
/// crash, a power cut): `.NAME.XXXXXXXXXX.tmp` files and `.NAME.XXXXXXXXXX.unpack` folders
/// (the 10 random letters ugw's temp names carry), for the URL's name and the staged name
/// (`--name`, an extracted folder's), owned by the invoking user or root. Nothing else is
/// touched. Under the lock of the staging folder nobody else is writing them.
fn remove_stale_temps(ctx: &Ctx, plan: &Plan) {
    let staged_name = plan
        .final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let names: Vec<&str> = std::iter::once(plan.file_name.as_str())
        .chain(staged_name.as_deref())
        .collect();
    let Ok(entries) = std::fs::read_dir(&plan.dest) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(folder) = names.iter().find_map(|ours| leftover_kind(&name, ours)) else {
            continue;
        };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let kind_matches = if folder {
            meta.is_dir()
        } else {
            meta.is_file()
        };
        if !kind_matches || !ugw_shared::owner_only::owned_by_invoker(&meta) {
            continue;
        }
        ctx.reporter
            .info(&format!("removing {name}, left by an interrupted run"));
        let _ = if folder {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
    }
}

/// Whether `entry` is a temp name ugw gives `name`'s work: `Some(false)` for a temp file
/// (`.NAME.XXXXXXXXXX.tmp`), `Some(true)` for an unpack folder (`.NAME.XXXXXXXXXX.unpack`).
fn leftover_kind(entry: &str, name: &str) -> Option<bool> {
    let ours = |kind| ugw_shared::atomic::is_temp_name(entry, name, kind);
    (ours("tmp") || ours("unpack")).then(|| ours("unpack"))
}

/// The download and everything up to the final rename.
fn stage(
    ctx: &mut Ctx,
    plan: &Plan,
    client: &HttpClient,
    check: &Check,
    limits: Limits,
    no_verify: bool,
) -> Result<StepResult> {
    let started = Instant::now();
    let archive_target = plan.dest.join(&plan.file_name);
    let target = if plan.extract {
        &archive_target
    } else {
        &plan.final_path
    };
    let mut file = AtomicFile::create(target)?;
    let got: Downloaded = match &plan.source {
        Source::Http(url) => download::http(ctx, client, url, &mut file, &plan.dest, limits)?,
        Source::File(path) => download::local(ctx, path, &mut file, &plan.dest, limits)?,
    };
    file.seal()?;
    if let Some(expected) = &check.sha256
        && *expected != got.sha256
    {
        return Err(Error::new(
            ErrorKind::ChecksumMismatch,
            format!(
                "{} has sha256 {}, expected {expected}; nothing was kept",
                plan.file_name, got.sha256
            ),
        ));
    }
    if let Some(signature) = &check.artifact_signature {
        signature.verify_file(file.temp_path())?;
    }
    let took = started.elapsed();
    ctx.reporter.info(&format!(
        "{} sha256 {}… ({} in {}{}{})",
        if no_verify { "unverified" } else { "verified" },
        &got.sha256[..12],
        human_bytes(got.bytes),
        human(took),
        speed(got.bytes, took),
        match got.attempts {
            1 => String::new(),
            n => format!(", {n} attempts"),
        }
    ));
    let mut manifest_sha256 = None;
    if plan.extract {
        manifest_sha256 = Some(extract(ctx, plan, file.temp_path(), &got.sha256)?);
    } else {
        file.file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(plan.mode))
            .map_err(|e| {
                Error::io(
                    format!("cannot set the mode of {}", file.temp_path().display()),
                    &e,
                )
            })?;
        if let Some(smoke) = &plan.smoke {
            smoke_test(
                ctx,
                smoke,
                file.temp_path(),
                plan.smoke_timeout,
                Smoked::New,
            )?;
        }
        ctx.cancel.critical(|| file.commit())?;
    }
    let mut result = fetched(plan, &got.sha256, got.bytes, !no_verify, got.resumed);
    result.resumed = got.resumed;
    result.manifest_sha256 = manifest_sha256;
    Ok(StepResult::typed(true, &result))
}

fn fetched(plan: &Plan, sha256: &str, bytes: u64, verified: bool, resumed: bool) -> Fetched {
    Fetched {
        url: plan.shown_url.clone(),
        path: plan.final_path.display().to_string(),
        sha256: sha256.to_string(),
        bytes,
        version: plan.version.clone(),
        verified,
        resumed,
        manifest_sha256: None,
    }
}

/// Unpack the verified archive into a temp folder beside the final one, mark it with the
/// archive's digest and the manifest of every entry, smoke-test it, then rename it into
/// place. Returns the manifest's digest, which the step records: the archive is not kept, so
/// it is what ugw-swap checks the folder against before it publishes it.
fn extract(ctx: &mut Ctx, plan: &Plan, archive: &Path, sha256: &str) -> Result<String> {
    let reader = ugw_shared::atomic::open_regular(archive)
        .map_err(|e| Error::io(format!("cannot open {}", archive.display()), &e))?;
    let options = unpack::Options {
        strip_components: plan.strip_components,
        only: None,
        keep_owners: false,
        deadline: ctx.deadline(),
        symlinks: if plan.allow_absolute_symlinks {
            unpack::Symlinks::AllowAbsolute
        } else {
            unpack::Symlinks::Inside
        },
        ..unpack::Options::default()
    };
    let staged = unpack::stage(
        unpack::decoder(reader)?,
        &plan.final_path,
        &options,
        &ctx.cancel,
    )?;
    let manifest = TreeManifest::of(staged.path(), &[FETCH_MARKER])?;
    if manifest.is_empty() && plan.strip_components > 0 {
        return Err(Error::usage(format!(
            "--strip-components {} leaves nothing of the archive (no entry has more path \
             components than that); nothing was staged",
            plan.strip_components
        )));
    }
    // Scrubbed as the record is (a presigned URL's signature, a ?token=): the marker is
    // copied into the release by ugw-swap, and nothing ugw writes to disk holds a secret.
    let marker = json!({
        "sha256": sha256,
        "url": ctx.scrubber().scrub_str(&plan.shown_url),
        "options": staging_options(plan),
        "manifest": manifest,
    })
    .to_string();
    ugw_shared::atomic::write_atomic(&staged.path().join(FETCH_MARKER), marker.as_bytes())?;
    if let Some(smoke) = &plan.smoke {
        smoke_test(ctx, smoke, staged.path(), plan.smoke_timeout, Smoked::New)?;
    }
    // An older folder under the name (another digest) goes aside first, then away.
    if plan.final_path.exists() {
        let aside = plan.dest.join(format!(
            ".{}.{}.replaced",
            plan.file_name,
            fastrand::u64(..)
        ));
        ctx.track_temp(&aside);
        ugw_shared::atomic::rename_durable(&plan.final_path, &aside)?;
    }
    ctx.cancel.critical(|| staged.commit())?;
    Ok(manifest.digest())
}

/// The artifact is already at its final name with this digest: its size (and for an
/// extracted folder, its manifest's digest), else `None`. A folder counts as staged only when
/// its marker names this archive and every entry is still what the marker's manifest lists: a
/// file changed since, or a marker without a manifest (an older ugw), is staged again.
fn staged_already(plan: &Plan, expected: &str) -> Result<Option<(u64, Option<String>)>> {
    if plan.extract {
        let Some((sha256, listed)) = TreeManifest::in_fetch_marker(&plan.final_path) else {
            return Ok(None);
        };
        let options = TreeManifest::fetch_marker_field(&plan.final_path, "options");
        if sha256 != expected || options.as_ref() != Some(&staging_options(plan)) {
            return Ok(None);
        }
        let found = TreeManifest::of(&plan.final_path, &[FETCH_MARKER])?;
        return Ok((found == listed).then(|| (0, Some(listed.digest()))));
    }
    match std::fs::symlink_metadata(&plan.final_path) {
        // The mode is what --mode asks for (a rerun with another --mode stages it again).
        Ok(meta)
            if meta.is_file()
                && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
                    == plan.mode =>
        {
            Ok((sha256_file(&plan.final_path)? == expected).then_some((meta.len(), None)))
        }
        _ => Ok(None),
    }
}

/// Run the smoke command on the new artifact (`{}` is its path); failing removes it.
/// What a failing smoke test leaves.
#[derive(Clone, Copy)]
enum Smoked {
    /// The new artifact, before its final rename: it is removed.
    New,
    /// An artifact staged already: it is left as it is (the step fails).
    Staged,
}

fn smoke_test(
    ctx: &Ctx,
    command: &str,
    path: &Path,
    timeout: Duration,
    smoked: Smoked,
) -> Result<()> {
    let shown_path = path.display().to_string();
    let command_line = smoke::substitute(command, &shown_path)?;
    let mut deadline = Instant::now() + timeout;
    if let Some(step) = ctx.deadline() {
        deadline = deadline.min(step);
    }
    ctx.reporter.info(&format!("smoke test: {command}"));
    // The path also as $UGW_ARTIFACT and $1, for CMD's shell to expand (never text to re-read).
    let spec = RunSpec::argv(
        "sh",
        [
            "-c",
            command_line.as_str(),
            "ugw-smoke",
            shown_path.as_str(),
        ],
        deadline,
    )
    .with_env("UGW_ARTIFACT", &shown_path);
    let outcome = run_command(&spec, &ctx.cancel)?;
    if outcome.success() {
        return Ok(());
    }
    let mut output = outcome.stdout.clone();
    output.extend_from_slice(&outcome.stderr);
    let output = ugw_shared::scrub::excerpt(&output, 2000);
    Err(Error::new(
        ErrorKind::SmokeFailed,
        format!(
            "the smoke test '{command}' failed ({}); {}",
            outcome.describe(),
            match smoked {
                Smoked::New => "the artifact was removed",
                Smoked::Staged => "the artifact staged already was left as it is",
            }
        ),
    )
    .with_result(
        json!({"smoke": {"command": command, "outcome": outcome.describe(), "output": output}}),
    ))
}

fn speed(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs < 0.001 {
        return String::new();
    }
    format!(", {}/s", human_bytes((bytes as f64 / secs) as u64))
}

/// What the artifact is checked against.
struct Check {
    sha256: Option<String>,
    /// A signature over the artifact itself (no checksum file was given).
    artifact_signature: Option<signature::Signed>,
}

impl Check {
    fn resolve(
        ctx: &Ctx,
        integrity: &Integrity,
        clients: &side_clients::Clients,
        plan: &Plan,
        limits: Limits,
    ) -> Result<Self> {
        let sums_text = checksum_file(ctx, integrity, clients, limits)?;
        let signed = signature(ctx, integrity, clients, limits)?;
        let mut check = Check {
            sha256: None,
            artifact_signature: None,
        };
        if let Some(hex) = &integrity.sha256 {
            check.sha256 = Some(parse_sha256(hex).ok_or_else(|| {
                Error::usage(format!("--sha256 '{hex}' is not 64 hexadecimal digits"))
            })?);
        }
        if let Some(text) = sums_text {
            if let Some(signed) = &signed {
                signed.verify_bytes(&text, "the checksum file")?;
            }
            let text = String::from_utf8_lossy(&text);
            // The operator's --name first (an asset URL's last segment is often an id),
            // then the URL's own name.
            let mut names: Vec<&str> = integrity.name.as_deref().into_iter().collect();
            names.push(&plan.file_name);
            let found =
                sums::find(&text, &names).map_err(|why| Error::new(ErrorKind::NotFound, why))?;
            check.sha256 = Some(found);
        } else {
            check.artifact_signature = signed;
        }
        Ok(check)
    }
}

/// The checksum file `--sha256-url` or `--sha256-file` names, read whole, if one is given.
fn checksum_file(
    ctx: &Ctx,
    integrity: &Integrity,
    clients: &side_clients::Clients,
    limits: Limits,
) -> Result<Option<Vec<u8>>> {
    if let Some(url) = &integrity.sha256_url {
        return small_file(ctx, clients.side(url), url, limits).map(Some);
    }
    let Some(path) = &integrity.sha256_file else {
        return Ok(None);
    };
    if let Some(refused) = ugw_shared::atomic::link_refused(path, "--sha256-file") {
        return Err(refused);
    }
    ugw_shared::atomic::read_capped(path, SMALL_FILE_LIMIT)
        .map(Some)
        .map_err(|e| {
            Error::usage(format!(
                "--sha256-file {}: cannot read it ({e})",
                path.display()
            ))
        })
}

/// The minisign signature `--minisign-sig-url` names, read, with its key, if one is given.
fn signature(
    ctx: &Ctx,
    integrity: &Integrity,
    clients: &side_clients::Clients,
    limits: Limits,
) -> Result<Option<signature::Signed>> {
    let Some((key, url)) = &integrity.minisign else {
        return Ok(None);
    };
    signature::Signed::new(key, &small_file(ctx, clients.side(url), url, limits)?).map(Some)
}

/// A checksum or signature file, read whole (it is small), with a few retries.
fn small_file(ctx: &Ctx, client: &HttpClient, url: &str, limits: Limits) -> Result<Vec<u8>> {
    // A file:// URL is parsed as --url's is: percent-decoded, file://localhost/ is local.
    if url.starts_with("file://")
        && let (Source::File(path), _) = source(url, ctx)?
    {
        if let Some(refused) = ugw_shared::atomic::link_refused(&path, url) {
            return Err(refused);
        }
        return ugw_shared::atomic::read_capped(&path, SMALL_FILE_LIMIT)
            .map_err(|e| Error::new(ErrorKind::NotFound, format!("cannot read {url}: {e}")));
    }
    http::check_url(url, ctx.scrubber())?;
    let mut last = String::new();
    let mut backoff =
        ugw_shared::poll::Backoff::exponential(Duration::from_millis(400)).until(limits.deadline);
    for attempt in 0..4u32 {
        if attempt > 0 {
            let Some(next) = backoff.next_from(Instant::now(), None) else {
                break;
            };
            ctx.cancel.sleep_until(next.at)?;
        }
        match client.fetch_request(
            Request::get(url),
            limits.deadline,
            SMALL_FILE_LIMIT,
            &ctx.cancel,
        ) {
            Ok(answer) if answer.status == 200 && !answer.truncated => return Ok(answer.body),
            Ok(answer) if answer.status == 429 || answer.status >= 500 => {
                last = format!("HTTP {}", answer.status);
            }
            Ok(answer) if answer.truncated => {
                return Err(Error::new(
                    ErrorKind::UnsafeInput,
                    format!("{url} is larger than {SMALL_FILE_LIMIT} bytes"),
                ));
            }
            Ok(answer) => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{url} answered HTTP {}", answer.status),
                ));
            }
            Err(e) => {
                ctx.cancel.check()?;
                if e.permanent {
                    return Err(Error::new(
                        ErrorKind::Network,
                        format!("cannot fetch {url}: {}", e.message),
                    ));
                }
                last = e.message;
            }
        }
    }
    Err(Error::new(
        ErrorKind::Network,
        format!("cannot fetch {url}: {last}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_give_their_folder_and_names_stay_plain() {
        assert_eq!(archive_stem("app-1.2.tar.gz"), "app-1.2");
        assert_eq!(archive_stem("app-1.2.tgz"), "app-1.2");
        assert_eq!(archive_stem("app-1.2.tar.zst"), "app-1.2");
        assert_eq!(archive_stem("app"), "app");
        for bad in ["", ".", "..", "a/b", ".hidden"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_ugw_temp_names_are_leftovers() {
        assert_eq!(leftover_kind(".app.AbCdE12345.tmp", "app"), Some(false));
        assert_eq!(leftover_kind(".app.AbCdE12345.unpack", "app"), Some(true));
        for not_ours in [
            ".app.AbCdE1234.tmp",
            ".app.AbCdE12345.tmp.x",
            ".app.AbC-E12345.tmp",
            ".application.AbCdE12345.tmp",
            "app.AbCdE12345.tmp",
            ".app.AbCdE12345.staging",
        ] {
            assert_eq!(leftover_kind(not_ours, "app"), None, "{not_ours}");
        }
    }

    #[test]
    fn the_recorded_url_has_no_user_info() {
        let url = url::Url::parse("https://user:pw@example.com/a/app.tgz?x=1").unwrap();
        assert_eq!(shown(&url), "https://example.com/a/app.tgz?x=1");
    }
}
