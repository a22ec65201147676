//! The migration file reader (`DIR/<version>_<name>.sql`, `DIR/post/…`) and its directives
//! (`-- ugw:no-transaction`, `-- ugw:foreign-keys-off`, `-- ugw:allow RULE`), then the
//! linter over what it read, for both dialects. The first line of the input is the file
//! name (a `post/` prefix puts it in the post-deploy folder); the rest its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ugw_migrate::fuzzing::{Engine, lint, load, refusals};

fuzz_target!(|data: &[u8]| {
    let (name, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"0001_fuzz.sql"[..], data),
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return;
    };
    let (folder, name) = match name.strip_prefix("post/") {
        Some(rest) => ("post", rest),
        None => ("", name),
    };
    // A name the file system can hold, in the folder: no separators, no `.`/`..`, no NUL.
    if name.is_empty() || name.len() > 200 || name.contains(['/', '\0']) || name == "." || name == ".." {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp folder");
    let folder = dir.path().join(folder);
    std::fs::create_dir_all(&folder).expect("the migrations folder");
    std::fs::write(folder.join(name), body).expect("the migration file");
    let Ok((migrations, _skipped)) = load(dir.path()) else {
        return;
    };
    for migration in &migrations {
        assert!(!migration.name.is_empty(), "a migration with no name: {name:?}");
        assert_eq!(migration.checksum.len(), 64);
        for engine in [Engine::Sqlite, Engine::Postgres] {
            let _ = lint(migration, engine);
            let _ = refusals(migration, engine);
        }
    }
});
