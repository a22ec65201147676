//! Issue 24: `ugw-migrate up --from-image` takes the migrations from the image this run's
//! `ugw-fetch --image` step verified (`docker create`, `docker cp` of `--image-path`), as from
//! an unpacked release; the container it made is always removed. A real image built offline
//! by `kit::docker`, pushed to a loopback registry and pulled by digest; a real SQLite file.

use crate::kit;

use kit::docker::{self, Behaviour, Cleanup, ImageSpec, Registry};
use std::path::{Path, PathBuf};

const RUN: &str = "20261207T160000Z-test-0024";

/// A record with one ok `ugw-fetch --image` step of `repository@digest` in `run`, on this
/// host.
fn image_record(run: &str, repository: &str, digest: &str) -> serde_json::Value {
    docker::fetched_image_record(run, run, repository, digest, "v2.0.0")
}

/// One test's set-up with Docker: a loopback registry, the image of `image_with_migrations`
/// pulled by digest, and the path of the SQLite file the migrations go to (not made yet).
/// Fields drop in order: the guard removes the image before the registry stops.
struct Lab {
    image: docker::DemoImage,
    db: PathBuf,
    _cleanup: Cleanup,
    _registry: Registry,
    _dir: tempfile::TempDir,
}

impl Lab {
    /// `None` (the test skips, or fails under CI=true) without Docker.
    fn new() -> Option<Lab> {
        docker::require_docker()?;
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start(dir.path());
        let cleanup = Cleanup::new();
        let image = image_with_migrations(&registry, &cleanup);
        Some(Lab {
            image,
            db: dir.path().join("app.db"),
            _cleanup: cleanup,
            _registry: registry,
            _dir: dir,
        })
    }

    /// This run's record of the image's `ugw-fetch --image` step.
    fn record(&self) -> serde_json::Value {
        image_record(RUN, &self.image.repository, &self.image.digest)
    }

    /// Nothing was applied to the database, and no container made from the image is left.
    fn assert_untouched(&self) {
        assert!(!tables(&self.db).contains("items"));
        assert_eq!(containers_of(&self.image.by_digest()), "");
    }
}

/// `ugw-migrate up --from-image` on the record of a real fetched image, edited by `forge`
/// first: refused with `kind`, saying `says`, with nothing applied and no container left.
fn refused_after(
    forge: impl FnOnce(&mut serde_json::Value, &docker::DemoImage),
    kind: kit::Kind,
    says: &str,
) {
    let Some(lab) = Lab::new() else {
        return;
    };
    let mut record = lab.record();
    forge(&mut record, &lab.image);
    migrate(&record.to_string(), &lab.db, &[])
        .fails_with(kind)
        .stderr_has(says);
    lab.assert_untouched();
}

/// An image holding `/migrations/0001_items.sql`, pulled here by digest.
fn image_with_migrations(registry: &Registry, cleanup: &Cleanup) -> docker::DemoImage {
    let mut spec = ImageSpec::new(&cleanup.name("app"), "v2.0.0", Behaviour::Healthy);
    spec.files.push((
        "/migrations/0001_items.sql".to_string(),
        b"CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT);\n".to_vec(),
    ));
    let image = docker::build_image(registry, &spec);
    docker::docker_ok(&["pull", &image.by_digest()]);
    image
}

fn migrate(record: &str, db: &Path, extra: &[&str]) -> kit::Outcome {
    let url = format!("sqlite://{}", kit::s(db));
    let mut cmd = kit::tool("ugw-migrate");
    cmd.args(["up", "--from-image", "--db", &url, "--create"])
        .args(extra);
    kit::with_stdin(cmd, record)
}

fn tables(db: &Path) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(".tables")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The containers made from `reference` (none once ugw-migrate is done).
fn containers_of(reference: &str) -> String {
    docker::docker_ok(&["ps", "-aq", "--filter", &format!("ancestor={reference}")])
}

#[test]
fn the_migrations_of_the_fetched_image_are_applied_once_and_no_container_is_left() {
    let Some(lab) = Lab::new() else {
        return;
    };
    let (image, db, record) = (&lab.image, &lab.db, lab.record().to_string());
    let out = migrate(&record, db, &[]);
    out.succeeds()
        .stderr_has(format!("copied /migrations out of {}", image.by_digest()));
    assert!(out.last_step().changed);
    assert!(tables(db).contains("items"), "{}", tables(db));
    assert_eq!(containers_of(&image.by_digest()), "");
    let again = migrate(&record, db, &[]);
    again.succeeds();
    assert!(!again.last_step().changed, "{}", again.stdout);
    assert_eq!(containers_of(&image.by_digest()), "");
}

#[test]
fn a_path_the_image_does_not_have_is_a_clear_error_and_no_container_is_left() {
    let Some(lab) = Lab::new() else {
        return;
    };
    migrate(
        &lab.record().to_string(),
        &lab.db,
        &["--image-path", "/db/migrations"],
    )
    .fails_with(kit::Kind::NotFound)
    .stderr_has("--image-path /db/migrations cannot be copied out of");
    lab.assert_untouched();
}

#[test]
fn a_fetch_step_of_another_run_is_not_used() {
    refused_after(
        |record, _| record["steps"][0]["run"] = "20261201T000000Z-other-0001".into(),
        kit::Kind::Usage,
        "so it is not used",
    );
}

#[test]
fn an_image_not_here_with_the_fetched_digest_is_refused_and_nothing_is_applied() {
    // The record names the repository with a digest no image here has.
    refused_after(
        |record, image| {
            let other = format!("sha256:{}", "0".repeat(64));
            record["steps"][0]["result"]["digest"] = other.clone().into();
            record["steps"][0]["result"]["reference"] =
                format!("{}@{other}", image.repository).into();
        },
        kit::Kind::NotFound,
        "is not here any more",
    );
}

#[test]
fn a_fetch_step_whose_reference_is_not_its_image_and_digest_is_refused() {
    // A forged step: its image and digest name another repository than the reference it
    // would have the migrations copied out of.
    refused_after(
        |record, _| record["steps"][0]["result"]["image"] = "127.0.0.1:1/elsewhere".into(),
        kit::Kind::BadRecord,
        "is not its image and digest",
    );
}

#[test]
fn after_an_image_fetch_dir_still_works_and_no_dir_points_to_from_image() {
    // No docker needed: ugw-migrate reads the fetch step, never the image, on these paths.
    let dir = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "1".repeat(64));
    let record = image_record(RUN, "127.0.0.1:5000/app", &digest).to_string();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let db = dir.path().join("app.db");
    let url = format!("sqlite://{}", kit::s(&db));

    let mut cmd = kit::tool("ugw-migrate");
    cmd.args(["up", "--create", "--db", &url, "--dir", kit::s(&migrations)]);
    kit::with_stdin(cmd, &record).succeeds();
    assert!(tables(&db).contains("items"));

    let mut cmd = kit::tool("ugw-migrate");
    cmd.args(["up", "--db", &url]);
    kit::with_stdin(cmd, &record)
        .fails_with(kit::Kind::Usage)
        .stderr_has("--from-image");
}
