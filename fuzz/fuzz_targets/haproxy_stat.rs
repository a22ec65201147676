//! ugw-drain's readers of HAProxy's answers: `show stat` (CSV) and `show servers state`. The
//! first line of the input is `BACKEND/SERVER`, the rest the answer; a row found is the one
//! asked for, keyed by the header's columns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ugw_shared::haproxy::fuzzing::{servers_state, show_stat};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (who, answer) = text.split_once('\n').unwrap_or(("app/web1", text));
    let (backend, server) = who.split_once('/').unwrap_or(("app", "web1"));
    // HAProxy never repeats a column; with a repeated one the last copy is read.
    let first = answer.lines().next().unwrap_or_default();
    let header: Vec<&str> = first.strip_prefix("# ").unwrap_or(first).split(',').collect();
    let unique = header.iter().enumerate().all(|(i, h)| !header[..i].contains(h));
    if let Ok(row) = show_stat(answer, backend, server)
        && unique
    {
        assert_eq!(row.get("pxname").map(String::as_str), Some(backend));
        assert_eq!(row.get("svname").map(String::as_str), Some(server));
    }
    let _ = servers_state(answer, server);
});
