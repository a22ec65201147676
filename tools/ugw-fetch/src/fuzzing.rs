//! The checksum-file (SHA256SUMS) reader, reachable from fuzz/ only (the `fuzzing` feature,
//! never enabled by the workspace build): the fuzz target drives the real code.

/// The digest `text` gives the first of `names`, as `ugw-fetch --sums` reads it.
pub fn sums_find(text: &str, names: &[&str]) -> Result<String, String> {
    crate::sums::find(text, names)
}
