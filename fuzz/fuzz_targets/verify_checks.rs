//! The checks file of `ugw-verify --checks FILE.json`: any text is read or refused with a
//! usage error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ugw_verify::fuzzing::checks_file(text);
});
