//! TCP targets: `HOST:PORT` as operators write it (IPv6 in brackets), and a connect attempt
//! that keeps its deadline.

use crate::error::{Error, Result};
use crate::poll::AttemptError;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Check `HOST:PORT` given with `flag`; IPv6 literals must be in brackets.
pub fn check_addr(addr: &str, flag: &str) -> Result<String> {
    let bad = || {
        Error::usage(format!(
            "{flag} '{addr}' is not HOST:PORT (IPv6 as [::1]:8080)"
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if port.parse::<u16>().map_err(|_| bad())? == 0 {
        return Err(Error::usage(format!(
            "{flag} '{addr}' has port 0: a port is 1 to 65535"
        )));
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed) {
        return Err(bad());
    }
    Ok(addr.to_string())
}

/// Open (and close) a connection to `addr` before `until`; the time it took.
pub fn connect(addr: &str, until: Instant) -> Result<Duration, AttemptError> {
    let started = Instant::now();
    open(addr, until).map(|_| started.elapsed())
}

/// A connection to `addr` (every address it resolves to, in turn), opened before `until`.
pub fn open(addr: impl ToSocketAddrs, until: Instant) -> Result<TcpStream, AttemptError> {
    let started = Instant::now();
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| AttemptError::new(format!("cannot resolve: {e}")))?
        .collect();
    let mut last = AttemptError::new("no address");
    for sock in addrs {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AttemptError::timed_out(started.elapsed()));
        }
        match TcpStream::connect_timeout(&sock, left) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = AttemptError::new("connection refused");
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = AttemptError::timed_out(started.elapsed());
            }
            Err(e) => last = AttemptError::new(e.to_string()),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(check_addr("127.0.0.1:80", "--tcp").is_ok());
        assert!(check_addr("[::1]:8080", "--tcp").is_ok());
        assert!(check_addr("db.internal:5432", "--tcp").is_ok());
        assert!(check_addr("::1:8080", "--tcp").is_err());
        assert!(check_addr("host", "--tcp").is_err());
        assert!(check_addr("host:http", "--tcp").is_err());
        assert!(check_addr("host:99999", "--tcp").is_err());
        assert!(check_addr("host:0", "--tcp").is_err());
    }

    #[test]
    fn refused_is_not_a_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert!(connect(&addr, Instant::now() + Duration::from_secs(1)).is_ok());
        drop(listener);
        let err = connect(&addr, Instant::now() + Duration::from_secs(1)).unwrap_err();
        assert_eq!(err, AttemptError::new("connection refused"));
    }
}
