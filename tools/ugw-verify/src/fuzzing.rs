//! The checks-file reader, reachable from fuzz/ only (the `fuzzing` feature, never enabled
//! by the workspace build): the fuzz target drives the real code.

use ugw_shared::scrub::Scrubber;

/// Read `text` as `ugw-verify --checks` does (the file, then the graph of captures), and
/// say how many checks it holds or why it was refused.
pub fn checks_file(text: &str) -> Result<usize, String> {
    let scrubber = Scrubber::default();
    let env = crate::spec::Env {
        scrubber: &scrubber,
    };
    let checks = crate::spec::parse_file(text, "fuzz.json", &env).map_err(|e| e.to_string())?;
    crate::spec::check_graph(&checks).map_err(|e| e.to_string())?;
    Ok(checks.len())
}
