//! ugw-migrate: see `man ugw-migrate`.
fn main() {
    ugw_shared::cli::run_tool(ugw_migrate::tool())
}
