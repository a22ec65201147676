//! ugw-backup: see `man ugw-backup`.
fn main() {
    ugw_shared::cli::run_tool(ugw_backup::tool())
}
