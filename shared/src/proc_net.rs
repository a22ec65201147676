//! TCP connections as the kernel lists them in `/proc/net/tcp` and `/proc/net/tcp6`: how
//! many are ESTABLISHED on a local port (clients of a server on this host), which is what a
//! drain without an application metric can wait on. The listener itself is not counted; idle
//! keep-alive connections from a load balancer are, and keep the count above zero.

use std::path::Path;

/// The kernel's code for ESTABLISHED in the `st` column.
const ESTABLISHED: &str = "01";

/// ESTABLISHED connections whose local end is `port`, over IPv4 and IPv6. A table that is
/// missing (no IPv6 in this kernel) counts none; one that cannot be read is an error.
pub fn established_on_port(port: u16) -> std::io::Result<u64> {
    let mut total = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(Path::new(table)) {
            Ok(text) => total += count_established(&text, port),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Count the rows of one table (`sl local_address rem_address st …`, addresses as
/// `HEXADDR:HEXPORT`) that are ESTABLISHED on local `port`.
fn count_established(table: &str, port: u16) -> u64 {
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let local_port = fields
                .next()
                .and_then(|local| local.rsplit_once(':'))
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            let state = fields.nth(1);
            local_port == Some(port) && state == Some(ESTABLISHED)
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:A1B4 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
   4: 0100007F:1F90 0100007F:A1B6 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn only_established_rows_on_the_local_port_count() {
        // Port 8080 is 1F90: the listener (0A), the client end (local A1B2) and a TIME_WAIT
        // (06) do not count.
        assert_eq!(count_established(TABLE, 8080), 2);
        assert_eq!(count_established(TABLE, 0xA1B2), 1);
        assert_eq!(count_established(TABLE, 9), 0);
        assert_eq!(count_established("", 8080), 0);
    }

    #[test]
    fn live_connections_to_a_listener_are_counted_and_the_listener_is_not() {
        for host in ["127.0.0.1", "[::1]"] {
            let Ok(listener) = TcpListener::bind(format!("{host}:0")) else {
                continue; // no IPv6 loopback here
            };
            let port = listener.local_addr().unwrap().port();
            assert_eq!(established_on_port(port).unwrap(), 0, "{host}");
            let clients: Vec<_> = (0..3)
                .map(|_| TcpStream::connect(listener.local_addr().unwrap()).unwrap())
                .collect();
            let accepted: Vec<_> = (0..3).map(|_| listener.accept().unwrap().0).collect();
            assert_eq!(established_on_port(port).unwrap(), 3, "{host}");
            drop(clients);
            drop(accepted);
        }
    }
}
