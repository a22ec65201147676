//! Keeptrusts' rolling update on Docker Compose: database, API, console, then the gateways one
//! at a time behind the lab's HAProxy (see the parent module for the lab).

use super::*;

const COMPONENTS: [&str; 4] = ["api", "console", "gateway1", "gateway2"];

/// The Keeptrusts lab (keeptrusts/lab.sh) with its database and the guard that removes
/// anything left in Docker under the test's prefix. Fields drop in order: the lab (`lab_stop`
/// takes its projects down, stops the registry and HAProxy), the guard, the database.
struct Keeptrusts {
    lab: Lab,
    docker: kit::docker::Cleanup,
    db: Database,
}

fn keeptrusts_lab(test: &str) -> Option<Keeptrusts> {
    kit::docker::require_docker()?;
    if !HaProxy::available() || !kit::require("pg_dump") || !kit::require("pg_restore") {
        return None;
    }
    let db = kit::postgres::database(test)?;
    let docker = kit::docker::Cleanup::new();
    let lab = Lab::start(
        "keeptrusts",
        &["python3", "sha256sum"],
        &[
            ("DATABASE_URL", &db.url()),
            ("LAB_DOCKER_PREFIX", docker.prefix()),
        ],
    )?;
    Some(Keeptrusts { lab, docker, db })
}

impl Keeptrusts {
    fn update(&self, version: &str) -> kit::Outcome {
        let conf = format!("{}/upgrade.conf", self.lab.s());
        self.lab.run(
            "rolling-update.sh",
            &[version],
            &[("KEEPTRUSTS_CONF", &conf)],
        )
    }

    /// The component's Compose project, as the lab names it.
    fn project(&self, component: &str) -> String {
        self.docker.name(&format!("keeptrusts-{component}"))
    }

    /// The id of the container running `component` (the test fails when none or several do).
    fn container(&self, component: &str) -> String {
        let label = format!(
            "label=com.docker.compose.project={}",
            self.project(component)
        );
        let ids = kit::docker::docker_ok(&["ps", "-q", "--no-trunc", "--filter", &label]);
        assert_eq!(ids.lines().count(), 1, "{component}: {ids:?}");
        ids
    }

    /// HAProxy's view of `gateway` (see `haproxy_state`).
    fn balancer(&self, gateway: &str) -> (u32, u32) {
        haproxy_state(&self.lab.path().join("lb/admin.sock"), "gateways", gateway)
    }
}

/// Which component (Compose project) or HAProxy server a swap, drain or migrate step acted on.
fn acted_on(step: &kit::Step) -> String {
    let result = &step.result;
    let what = match step.tool.as_str() {
        "ugw-swap" => result["compose"]["project"].as_str().unwrap_or("?"),
        "ugw-drain" => result["server"].as_str().unwrap_or("?"),
        _ => "",
    };
    format!("{} {what}", step.tool).trim_end().to_string()
}

#[test]
fn keeptrusts_updates_in_dependency_order_with_gateways_one_at_a_time() {
    let Some(kt) = keeptrusts_lab("rb_keeptrusts_ok") else {
        return;
    };
    // Traffic through the gateways all along: not one request may fail.
    let load = Load::start(
        &format!("http://127.0.0.1:{}/work?ms=20", kt.lab.port("lb")),
        40,
        Duration::from_secs(150),
    );
    let out = kt.update("2.5.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");
    assert!(tally.ok >= 40, "too little load to tell: {tally:?}");
    for g in ["gateway1", "gateway2"] {
        assert_eq!(kt.balancer(g), (2, 0), "{g} left out of the balancer");
    }

    let record = kt.lab.record("state/rolling-update-2.5.0.json");
    assert!(record.ok, "{record:#?}");
    assert!(record.steps.iter().all(|s| s.status == "ok"));
    // Who did what, in order: the migrations, the swaps and the gateways' drains and returns.
    let order: Vec<String> = record
        .steps
        .iter()
        .filter(|s| ["ugw-swap", "ugw-drain", "ugw-migrate"].contains(&s.tool.as_str()))
        .map(acted_on)
        .collect();
    let swap = |c: &str| format!("ugw-swap {}", kt.project(c));
    assert_eq!(
        order,
        [
            "ugw-migrate".into(),
            swap("api"),
            swap("console"),
            "ugw-drain gateways/gateway1".into(),
            swap("gateway1"),
            "ugw-drain gateways/gateway1".into(),
            "ugw-drain gateways/gateway2".into(),
            swap("gateway2"),
            "ugw-drain gateways/gateway2".into(),
            "ugw-migrate".into(),
        ]
    );
    // One image for the platform, pulled once by digest: every swap pinned that reference.
    let fetched = &record.steps[3];
    assert_eq!(fetched.tool, "ugw-fetch");
    for s in record.steps.iter().filter(|s| s.tool == "ugw-swap") {
        assert_eq!(s.result["current"], fetched.result["reference"], "{s:#?}");
    }
    // Each gateway was checked while still out of the balancer, before it went back; the
    // drain counted its sessions down to zero.
    for gateway in ["gateway1", "gateway2"] {
        let server = format!("gateways/{gateway}");
        let at = |tool: &str, undo: bool| {
            record
                .steps
                .iter()
                .position(|s| {
                    s.tool == tool
                        && s.result["server"] == server.as_str()
                        && s.result["undo"] == undo
                })
                .unwrap()
        };
        let swapped = record
            .steps
            .iter()
            .position(|s| acted_on(s) == swap(gateway))
            .unwrap();
        let checked = record.steps[swapped..]
            .iter()
            .position(|s| s.tool == "ugw-verify")
            .unwrap()
            + swapped;
        assert!(at("ugw-drain", false) < swapped);
        assert!(checked < at("ugw-drain", true));
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
        assert_eq!(kt.lab.served(c), "2.5.0", "{c}");
    }
    assert_eq!(pg_columns(&kt.db, "items"), ["id", "name", "note"]);
    assert!(pg_columns(&kt.db, "legacy_sessions").is_empty());
}

#[test]
fn keeptrusts_a_failed_api_takes_the_platform_back_and_restores_the_database() {
    let Some(kt) = keeptrusts_lab("rb_keeptrusts_bad") else {
        return;
    };
    let containers: Vec<String> = COMPONENTS.iter().map(|c| kt.container(c)).collect();
    let out = kt.update("2.5.1");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = kt.lab.record("state/rolling-update-2.5.1.json");
    assert!(!record.ok);
    let failed: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.status != "ok")
        .map(|s| format!("{} {}", s.tool, s.status))
        .collect();
    assert_eq!(failed, ["ugw-wait-healthy failed"]);
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
    // Only the api was switched, so only the api is taken back: its swap and its rollback.
    let swaps: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.tool == "ugw-swap")
        .map(acted_on)
        .collect();
    let api = format!("ugw-swap {}", kt.project("api"));
    assert_eq!(swaps, [api.clone(), api]);
    // The api's swap taken back: its project, the bad image marked failed.
    let fetched = record.steps.iter().find(|s| s.tool == "ugw-fetch").unwrap();
    let back = &record.steps[record.steps.len() - 6].result;
    assert_eq!(back["rollback"], true, "{back:#}");
    assert_eq!(back["compose"]["project"], kt.project("api"));
    assert_eq!(back["marked_failed"], fetched.result["reference"]);
    for c in COMPONENTS {
        assert_eq!(kt.lab.served(c), "2.4.0", "{c}");
    }
    // Only the api had moved: the console and gateways kept their containers.
    for (c, id) in COMPONENTS.iter().zip(&containers).skip(1) {
        assert_eq!(&kt.container(c), id, "{c} was recreated");
    }
    for g in ["gateway1", "gateway2"] {
        assert_eq!(kt.balancer(g), (2, 0), "{g} left out of the balancer");
    }
    assert_eq!(pg_columns(&kt.db, "items"), ["id", "name"]);
    assert_eq!(pg_columns(&kt.db, "legacy_sessions"), ["id", "token"]);
}
