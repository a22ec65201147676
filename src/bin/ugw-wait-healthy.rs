//! ugw-wait-healthy: see `man ugw-wait-healthy`.
fn main() {
    ugw_shared::cli::main(ugw_wait_healthy::command(), ugw_wait_healthy::run)
}
