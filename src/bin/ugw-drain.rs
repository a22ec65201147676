//! ugw-drain: see `man ugw-drain`.
fn main() {
    ugw_shared::cli::run_tool(ugw_drain::tool())
}
