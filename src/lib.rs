//! The registry of ugw tools: one line per tool. xtask generates the man pages and
//! completions of exactly these; each has a three-line binary in `src/bin/`.

use ugw_shared::cli::Tool;

/// Every tool, in the order the overview page lists them.
#[must_use]
pub fn tools() -> Vec<Tool> {
    vec![ugw_wait_healthy::tool()]
}
