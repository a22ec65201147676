//! Keeptrusts' rolling update: database, API, console, then the gateways one at a time (see
//! the parent module for the lab).

use super::*;

const COMPONENTS: [&str; 4] = ["api", "console", "gateway1", "gateway2"];

fn keeptrusts_update(lab: &Lab, version: &str) -> kit::Outcome {
    let conf = format!("{}/upgrade.conf", lab.s());
    lab.run(
        "rolling-update.sh",
        &[version],
        &[("KEEPTRUSTS_CONF", &conf)],
    )
}

/// HAProxy in front of the gateways, checking each one's `/health/lb` (what the drain's flag
/// file turns to 503), with no retry that could hide a request sent to a gateway going down.
fn gateway_balancer(lab: &Lab) -> HaProxy {
    let servers: Vec<Server> = ["gateway1", "gateway2"]
        .iter()
        .map(|g| Server::new(g, &format!("127.0.0.1:{}", lab.port(g)), true))
        .collect();
    let options = haproxy::Options {
        check_path: "/health/lb".into(),
        backend_extra: vec!["retries 0".into()],
        ..haproxy::Options::default()
    };
    let balancer = HaProxy::start_with(&servers, &options);
    for g in ["gateway1", "gateway2"] {
        assert!(
            balancer.wait_status(g, "UP", Duration::from_secs(10)),
            "{g} never UP"
        );
    }
    balancer
}

#[test]
fn keeptrusts_updates_in_dependency_order_with_gateways_one_at_a_time() {
    if !HaProxy::available() {
        return;
    }
    let Some((lab, db)) = pg_lab("keeptrusts", "rb_keeptrusts_ok") else {
        return;
    };
    // Traffic through the gateways all along: not one request may fail.
    let balancer = gateway_balancer(&lab);
    let load = Load::start(
        &format!("{}/work?ms=20", balancer.url()),
        40,
        Duration::from_secs(90),
    );
    let out = keeptrusts_update(&lab, "2.5.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");
    assert!(tally.ok >= 40, "too little load to tell: {tally:?}");
    for g in ["gateway1", "gateway2"] {
        assert_eq!(balancer.status(g), "UP", "{g} left out of the balancer");
    }

    let record = lab.record("state/rolling-update-2.5.0.json");
    assert!(record.ok, "{record:#?}");
    assert!(record.steps.iter().all(|s| s.status == "ok"));
    // Who did what, in order: the swaps and the gateways' drains, checks and returns.
    let order: Vec<String> = record
        .steps
        .iter()
        .filter(|s| ["ugw-swap", "ugw-drain", "ugw-migrate"].contains(&s.tool.as_str()))
        .map(|s| format!("{} {}", s.tool, s.host))
        .collect();
    let host = &record.steps[0].host;
    assert_eq!(
        order,
        [
            // The migration runs as the api component, which fetched the release it reads.
            "ugw-migrate api".into(),
            "ugw-swap api".into(),
            "ugw-swap console".into(),
            "ugw-drain gateway1".into(),
            "ugw-swap gateway1".into(),
            "ugw-drain gateway1".into(),
            "ugw-drain gateway2".into(),
            "ugw-swap gateway2".into(),
            "ugw-drain gateway2".into(),
            format!("ugw-migrate {host}"),
            format!("ugw-migrate {host}"),
        ]
    );
    // Each gateway was checked while still out of the balancer, before it went back.
    for gateway in ["gateway1", "gateway2"] {
        let at = |tool: &str| {
            record
                .steps
                .iter()
                .rposition(|s| s.tool == tool && s.host == gateway)
                .unwrap()
        };
        assert!(at("ugw-swap") < at("ugw-verify") && at("ugw-verify") < at("ugw-drain"));
        assert!(!lab.exists(&format!("{gateway}/lb-drained")));
    }
    // Compared with the baseline taken before anything changed: latency and memory judged.
    let compared = &record.steps.last().unwrap().result;
    let measures: Vec<&str> = compared["comparison"]
        .as_array()
        .unwrap_or_else(|| panic!("no comparison: {compared:#}"))
        .iter()
        .map(|c| c["measure"].as_str().unwrap())
        .collect();
    assert!(
        measures.contains(&"p95_ms") && measures.contains(&"memory_bytes"),
        "{compared:#}"
    );
    for c in COMPONENTS {
        assert_eq!(lab.served(c), "2.5.0", "{c}");
    }
    assert_eq!(pg_columns(&db, "items"), ["id", "name", "note"]);
    assert!(pg_columns(&db, "legacy_sessions").is_empty());
}

#[test]
fn keeptrusts_a_failed_api_takes_the_platform_back_and_restores_the_database() {
    let Some((lab, db)) = pg_lab("keeptrusts", "rb_keeptrusts_bad") else {
        return;
    };
    let pids: Vec<String> = COMPONENTS.iter().map(|c| lab.pid(c)).collect();
    let out = keeptrusts_update(&lab, "2.5.1");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = lab.record("state/rolling-update-2.5.1.json");
    assert!(!record.ok);
    let failed: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.status != "ok")
        .map(|s| format!("{} {} {}", s.tool, s.host, s.status))
        .collect();
    assert_eq!(failed, ["ugw-wait-healthy api failed"]);
    let tail: Vec<String> = steps(&record).split_off(record.steps.len() - 6);
    assert_eq!(
        tail,
        [
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
            "ugw-wait-healthy ok",
            "ugw-wait-healthy ok",
            "ugw-wait-healthy ok"
        ]
    );
    for c in COMPONENTS {
        assert_eq!(lab.served(c), "2.4.0", "{c}");
    }
    assert!(lab.exists("api/releases/2.5.1/.ugw-failed"));
    // Only the api had moved: the console and gateways kept their process and release.
    for (c, pid) in COMPONENTS.iter().zip(&pids).skip(1) {
        assert_eq!(&lab.pid(c), pid, "{c} was restarted");
        assert!(!lab.exists(&format!("{c}/releases/2.5.1")), "{c}");
    }
    assert_eq!(pg_columns(&db, "items"), ["id", "name"]);
    assert_eq!(pg_columns(&db, "legacy_sessions"), ["id", "token"]);
}
