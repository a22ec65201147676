//! ugw-wait-healthy: see `man ugw-wait-healthy`.
fn main() {
    ugw_shared::cli::run_tool(ugw_wait_healthy::tool())
}
