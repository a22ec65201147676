//! The `tls` check: the certificate a server presents has enough days left and is valid for
//! the name clients use (and trusted, by `cacert` or the system's roots).

use crate::check::Outcome;
use crate::spec::TlsCheck;
use std::time::Instant;
use ugw_shared::cancel::Cancel;
use ugw_shared::http::peer_certificate;

pub fn run(check: &TlsCheck, until: Instant, cancel: &Cancel) -> Outcome {
    let expected = format!(
        "valid for {}, trusted, at least {} days left",
        check.server_name, check.min_days
    );
    if cancel.signal().is_some() {
        return Outcome::failed(expected, "not run".into(), "interrupted".into());
    }
    let cert = match peer_certificate(
        &check.host,
        check.port,
        &check.server_name,
        check.cacert.as_deref(),
        until,
    ) {
        Ok(cert) => cert,
        Err(why) => return Outcome::failed(expected, "no certificate".into(), why),
    };
    let observed = format!(
        "{} days left, names {}",
        cert.days_left,
        cert.names.join(" ")
    );
    let mut problems = Vec::new();
    if cert.days_left < check.min_days {
        problems.push(format!(
            "{} days left, fewer than {}",
            cert.days_left, check.min_days
        ));
    }
    if !cert.name_ok {
        problems.push(format!(
            "not valid for {} (it names {})",
            check.server_name,
            cert.names.join(", ")
        ));
    } else if let Some(why) = cert.untrusted {
        problems.push(format!("not trusted: {why}"));
    }
    if problems.is_empty() {
        Outcome::passed(expected, observed)
    } else {
        Outcome::failed(expected, observed, problems.join("; "))
    }
}
