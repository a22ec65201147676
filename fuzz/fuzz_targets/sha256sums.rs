//! The checksum-file reader of `ugw-fetch --sums` (SHA256SUMS in every published form). The
//! first line of the input is the name looked up, the rest the file; an answer is a
//! 64-digit lower-case hex digest or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name, sums) = text.split_once('\n').unwrap_or(("app.tar.gz", text));
    for names in [&[name][..], &[name, "app.tar.gz"][..]] {
        if let Ok(digest) = ugw_fetch::fuzzing::sums_find(sums, names) {
            assert_eq!(digest.len(), 64, "digest {digest:?}");
            assert!(digest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "digest {digest:?}");
        }
    }
});
