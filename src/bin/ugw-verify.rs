//! ugw-verify: see `man ugw-verify`.
fn main() {
    ugw_shared::cli::run_tool(ugw_verify::tool())
}
