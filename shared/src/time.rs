//! Durations on the command line, timestamps in the record, the host id and the run id.

use std::time::{Duration, SystemTime};

/// The longest duration a flag accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Parse a humantime duration (`250ms`, `90s`, `5m`); a bare number is refused because
/// `--timeout 30` is ambiguous at 3 a.m.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "'{text}' has no unit: write e.g. '{text}s' or '{text}ms'"
        ));
    }
    let parsed = humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration ({e}); write e.g. 250ms, 90s, 5m"))?;
    // A year bounds every wait: anything longer is a typo, and deadlines must not overflow.
    if parsed > MAX_DURATION {
        return Err(format!(
            "'{text}' is longer than a year; write e.g. 90s, 5m, 2h"
        ));
    }
    Ok(parsed)
}

/// RFC 3339 in UTC with milliseconds: `2026-11-21T23:59:01.123Z`.
#[must_use]
pub fn rfc3339_millis(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds, rounded down, as the record counts them.
#[must_use]
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A short human figure for stderr: `812 ms`, `1.9 s`, `2m 5s`.
#[must_use]
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        let (minutes, seconds) = (ms / 60_000, (ms % 60_000) / 1000);
        if seconds == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m {seconds}s")
        }
    }
}

/// This machine's host name, or `localhost` when it has none.
#[must_use]
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = String::from_utf8_lossy(uname.nodename().to_bytes())
        .trim()
        .to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// A cheap source of randomness for jitter and ids; not for anything secret.
#[derive(Debug, Clone)]
pub struct Jitter(fastrand::Rng);

impl Default for Jitter {
    fn default() -> Self {
        Jitter(fastrand::Rng::new())
    }
}

impl Jitter {
    pub fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }

    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.f64()
    }
}

/// A run id: `20261121T235901Z-node1-4f2a`, sortable by start time.
#[must_use]
pub fn new_run_id(host: &str) -> String {
    let stamp = rfc3339_millis(SystemTime::now());
    // 2026-11-21T23:59:01.123Z -> 20261121T235901Z
    let compact: String = stamp[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{compact}Z-{host}-{:04x}", fastrand::u16(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("500000000000y").is_err());
        assert!(
            parse_duration("2y")
                .unwrap_err()
                .contains("longer than a year")
        );
    }

    #[test]
    fn run_id_has_the_documented_shape() {
        let id = new_run_id("node 1");
        let re = regex::Regex::new(r"^\d{8}T\d{6}Z-node_1-[0-9a-f]{4}$").unwrap();
        assert!(re.is_match(&id), "{id}");
    }

    #[test]
    fn the_host_name_is_the_kernel_s() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let expected = if kernel.trim().is_empty() {
            "localhost"
        } else {
            kernel.trim()
        };
        assert_eq!(hostname(), expected);
    }

    #[test]
    fn jitter_spreads_within_its_range() {
        let mut jitter = Jitter::default();
        let draws: Vec<f64> = (0..1000).map(|_| jitter.unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.iter().any(|u| *u < 0.1) && draws.iter().any(|u| *u > 0.9));
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339_millis(t), "2023-11-14T22:13:20.123Z");
    }
}
