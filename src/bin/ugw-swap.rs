//! ugw-swap: see `man ugw-swap`.
fn main() {
    ugw_shared::cli::run_tool(ugw_swap::tool())
}
