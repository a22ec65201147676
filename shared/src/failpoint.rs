//! Named failpoints at ugw's durability boundaries, so the crash tests (tests/it/crash.rs) can
//! kill a tool at exactly the moment a real crash would hurt most: after a temp file is
//! written but before its fsync, between a ledger commit and the next statement, between a
//! release's move and the `current` switch.
//!
//! `hit("atomic.after-temp-write")` is compiled in only when
//! `cfg(any(debug_assertions, feature = "failpoints"))`: the debug build `make test` runs has
//! them, an optimised build may ask for them with the `failpoints` feature of ugw-shared, and a
//! release build (`make install`, `make bench`) never has them (there `hit` is an empty inline
//! function). Debug assertions rather than a feature alone, because the integration tests run
//! the binaries `cargo build --workspace` made: a feature only the tests turned on would make
//! cargo rebuild every tool between `cargo build` and `cargo test`.
//!
//! A failpoint is armed only by the environment: `UGW_FAILPOINT=NAME` (the first hit) or
//! `UGW_FAILPOINT=NAME@N` (the Nth hit, counting from 1). Armed and hit, the process sends
//! itself SIGKILL, so nothing after it runs: no destructor, no signal handler, no record
//! write — a real crash, not an exit. Unarmed, a hit costs one read of a value computed once.
//!
//! The names (each where the code calls `hit`):
//! - `atomic.after-temp-write`, `atomic.after-fsync`, `atomic.after-rename`: `AtomicFile`'s
//!   commit (every record, artifact, archive and sidecar ugw gives a final name);
//! - `record.after-write`: the `--record FILE` write, once the file has its new content;
//! - `migrate.before-ledger-commit`, `migrate.after-ledger-commit`: a migration's ledger row
//!   (both engines; a transactional file's one commit, a no-transaction file's last one);
//! - `swap.after-stage-move`, `swap.after-current-switch`: a release moved under the releases
//!   folder, and `current` (or the binary) switched before the restart;
//! - `backup.after-archive-rename`: the archive under its final name, before its sidecars;
//! - `backup.restore-after-swap-in`, `backup.restore-after-move-aside`: `restore --in-place`
//!   exchanged a restored path with the live one, and moved the old tree to its
//!   `.ugw-before-restore` name (before the live databases are carried over);
//! - `fetch.mid-download`, `fetch.mid-extract`: half of the body written, half of the
//!   archive's entries unpacked;
//! - `drain.after-state-change`: the node out of traffic, before the record says so;
//! - `compose.after-pin-write`: `ugw-swap --compose`'s override file pins the new image,
//!   before `up -d` (stop-first, and start-first's idle slot).

/// Stop here when `UGW_FAILPOINT` names this failpoint (and this is its Nth hit): the process
/// kills itself with SIGKILL. Does nothing otherwise.
#[cfg(any(debug_assertions, feature = "failpoints"))]
pub fn hit(name: &str) {
    if armed::should_die(name) {
        armed::die();
    }
}

/// Release builds have no failpoints: nothing to check, nothing to cost.
#[cfg(not(any(debug_assertions, feature = "failpoints")))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// What `UGW_FAILPOINT` asks for: a failpoint's name, and which of its hits kills (1 = the
/// first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    pub name: String,
    pub nth: u64,
}

/// `NAME` or `NAME@N` (N at least 1); `None` for an empty value, an empty name or an N that
/// is not a positive number (a typo arms nothing rather than killing at a guess).
#[must_use]
pub fn parse(value: &str) -> Option<Armed> {
    let value = value.trim();
    let (name, nth) = match value.rsplit_once('@') {
        Some((name, n)) => (name, n.parse::<u64>().ok().filter(|n| *n >= 1)?),
        None => (value, 1),
    };
    if name.is_empty() {
        return None;
    }
    Some(Armed {
        name: name.to_string(),
        nth,
    })
}

#[cfg(any(debug_assertions, feature = "failpoints"))]
mod armed {
    use super::{Armed, parse};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The environment variable that arms a failpoint.
    const VARIABLE: &str = "UGW_FAILPOINT";

    /// Read once: the environment does not change under a running tool.
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    /// How many times the armed failpoint was hit so far.
    static HITS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn should_die(name: &str) -> bool {
        let armed = ARMED.get_or_init(|| std::env::var(VARIABLE).ok().as_deref().and_then(parse));
        counts_as_the_fatal_hit(armed.as_ref(), name, &HITS)
    }

    /// Whether this hit of `name` is the one `armed` asks to die on (counting it in `hits`).
    pub(super) fn counts_as_the_fatal_hit(
        armed: Option<&Armed>,
        name: &str,
        hits: &AtomicU64,
    ) -> bool {
        match armed {
            Some(armed) if armed.name == name => {
                hits.fetch_add(1, Ordering::SeqCst) + 1 == armed.nth
            }
            _ => false,
        }
    }

    /// SIGKILL to this process: it cannot be caught, so nothing after the failpoint runs.
    pub(super) fn die() -> ! {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL to oneself is delivered before kill() returns; should it ever not be, abort
        // (SIGABRT) is still a crash, never a clean exit.
        std::process::abort()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_alone_arms_its_first_hit_and_name_at_n_its_nth() {
        assert_eq!(
            parse("atomic.after-fsync"),
            Some(Armed {
                name: "atomic.after-fsync".into(),
                nth: 1
            })
        );
        assert_eq!(
            parse(" record.after-write@3 "),
            Some(Armed {
                name: "record.after-write".into(),
                nth: 3
            })
        );
    }

    #[test]
    fn a_value_that_is_not_name_or_name_at_a_positive_number_arms_nothing() {
        for value in ["", "  ", "@2", "a@0", "a@-1", "a@x", "a@", "a@1.5"] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[cfg(any(debug_assertions, feature = "failpoints"))]
    #[test]
    fn only_the_armed_name_counts_and_only_its_nth_hit_is_fatal() {
        use std::sync::atomic::AtomicU64;
        let hits = AtomicU64::new(0);
        let armed = parse("swap.after-stage-move@2");
        let fatal = |name: &str| armed::counts_as_the_fatal_hit(armed.as_ref(), name, &hits);
        assert!(!fatal("swap.after-current-switch"), "another name");
        assert!(!fatal("swap.after-stage-move"), "its first hit");
        assert!(fatal("swap.after-stage-move"), "its second hit");
        assert!(!fatal("swap.after-stage-move"), "a third hit");
        let none = AtomicU64::new(0);
        assert!(!armed::counts_as_the_fatal_hit(
            None,
            "swap.after-stage-move",
            &none
        ));
        assert_eq!(none.into_inner(), 0, "unarmed counts nothing");
    }

    #[test]
    fn unarmed_a_hit_returns() {
        // This test binary runs without UGW_FAILPOINT (cargo test never sets it).
        assert!(std::env::var_os("UGW_FAILPOINT").is_none());
        hit("atomic.after-temp-write");
        hit("atomic.after-temp-write");
    }
}
