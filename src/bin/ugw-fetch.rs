//! ugw-fetch: see `man ugw-fetch`.
fn main() {
    ugw_shared::cli::run_tool(ugw_fetch::tool())
}
