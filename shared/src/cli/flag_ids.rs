//! `flag_ids!`: a tool's flag and subcommand ids, each written once. `command()` defines a
//! flag by its id and `Options` reads it by the same constant; the macro spells every id
//! from its constant's name (`FORCE_RESTART` is `"force-restart"`), so a constant and the
//! flag it names can never drift apart, and a tool's list is the names alone.
//!
//! ```
//! mod id {
//!     ugw_shared::flag_ids! {
//!         STATUS, ROOT, FORCE_RESTART,
//!         /// A group's id is declared the same way.
//!         RESTARTER,
//!     }
//! }
//! assert_eq!(id::STATUS, "status");
//! assert_eq!(id::FORCE_RESTART, "force-restart");
//! assert_eq!(id::RESTARTER, "restarter");
//! ```

/// Declares `pub const NAME: &str`, one for each name given (comma-separated, each with
/// its own doc comments if it needs them), its value the name in kebab case.
#[macro_export]
macro_rules! flag_ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub const $name: &str = {
                const SPELLED: [u8; stringify!($name).len()] =
                    $crate::cli::flag_ids::kebab_case(stringify!($name));
                match ::core::str::from_utf8(&SPELLED) {
                    Ok(id) => id,
                    // Invariant: kebab_case changes ASCII bytes into ASCII bytes only, so
                    // what was UTF-8 (an identifier) stays UTF-8; and this runs at compile time.
                    Err(_) => panic!("a flag id is not UTF-8"),
                }
            };
        )*
    };
}

/// `NAME` in kebab case as bytes: ASCII upper case lowered, `_` made `-`, the rest kept.
/// `N` is the name's length in bytes (the macro passes it).
#[doc(hidden)]
#[must_use]
pub const fn kebab_case<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut spelled = [0u8; N];
    let mut at = 0;
    while at < N {
        spelled[at] = match bytes[at] {
            b'_' => b'-',
            upper @ b'A'..=b'Z' => upper.to_ascii_lowercase(),
            other => other,
        };
        at += 1;
    }
    spelled
}

#[cfg(test)]
mod tests {
    mod id {
        crate::flag_ids! { ONCE, SHA256_URL, FAIL_IF_VERSION_DIFFERS }
    }

    #[test]
    fn each_id_is_its_name_in_kebab_case() {
        assert_eq!(id::ONCE, "once");
        assert_eq!(id::SHA256_URL, "sha256-url");
        assert_eq!(id::FAIL_IF_VERSION_DIFFERS, "fail-if-version-differs");
    }
}
