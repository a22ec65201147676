//! ugw-drain against the real things: HAProxy's runtime API, nginx's graceful QUIT, the demo
//! service's in-flight gauge and raw TCP connections. Also the kit's HAProxy, nginx and load
//! fixtures, which other tests share.

mod kit;

use kit::DemoApp;
use kit::haproxy::{HaProxy, Server};
use kit::load::Load;
use kit::nginx::Nginx;
use std::time::{Duration, Instant};

// ---- the kit's fixtures ----

#[test]
fn kit_haproxy_balances_checks_and_reports_a_server_it_was_told_to_drain() {
    if !HaProxy::available() {
        return;
    }
    let (a, b) = (DemoApp::start(&[]), DemoApp::start(&[]));
    let haproxy = HaProxy::start(&[
        Server::new("s1", &a.addr(), true),
        Server::new("s2", &b.addr(), false),
    ]);
    assert!(
        haproxy.wait_status("s1", "UP", Duration::from_secs(5)),
        "{}",
        haproxy.log()
    );
    assert_eq!(haproxy.status("s2"), "no check");
    for _ in 0..4 {
        assert_eq!(
            kit::load::get_url(&format!("{}/health/live", haproxy.url())),
            Ok(200)
        );
    }
    assert_eq!((haproxy.total("s1"), haproxy.total("s2")), (2, 2));
    haproxy.set_state("s2", "drain");
    assert_eq!(haproxy.status("s2"), "DRAIN");
    assert_eq!(haproxy.server_state("s2")["srv_admin_state"], "8");
    assert_eq!(haproxy.in_flight("s1"), 0);
}

#[test]
fn kit_nginx_proxies_to_its_upstream_and_exits_on_quit() {
    if !Nginx::available() {
        return;
    }
    let app = DemoApp::start(&[]);
    let mut nginx = Nginx::start(Some(&app.addr()));
    assert_eq!(
        kit::load::get_url(&format!("{}/nginx-ok", nginx.url())),
        Ok(200)
    );
    assert_eq!(
        kit::load::get_url(&format!("{}/slow?ms=1", nginx.url())),
        Ok(200)
    );
    assert!(
        app.wait_for_requests(1, Duration::from_secs(2)),
        "{}",
        app.log()
    );
    assert_eq!(
        std::fs::read_to_string(nginx.pidfile()).unwrap().trim(),
        nginx.pid().to_string()
    );
    kit::signal(nginx.pid(), libc::SIGQUIT);
    assert!(nginx.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn kit_load_holds_its_rate_and_counts_answers_and_failures() {
    let app = DemoApp::start(&[]);
    let load = Load::start(
        &format!("{}/health/live", app.url),
        100,
        Duration::from_secs(10),
    );
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.stop();
    let elapsed = started.elapsed();
    // 100/s for at least 0.5 s: at least 50 due (one more for the first, sent at once).
    assert!(tally.sent >= 50, "{tally:?}");
    assert!(
        tally.sent as f64 <= elapsed.as_secs_f64() * 100.0 + 1.0,
        "{tally:?}"
    );
    assert_eq!(tally.ok, tally.sent, "{tally:?}");
    let refused = Load::start(
        &format!("http://127.0.0.1:{}/", kit::free_port()),
        50,
        Duration::from_millis(200),
    );
    std::thread::sleep(Duration::from_millis(300));
    let tally = refused.stop();
    assert!(tally.failed >= 5 && tally.ok == 0, "{tally:?}");
    let missing = Load::start(
        &format!("{}/nothing-here", app.url),
        50,
        Duration::from_millis(100),
    );
    std::thread::sleep(Duration::from_millis(150));
    let tally = missing.stop();
    assert!(tally.sent >= 1 && tally.non_2xx == tally.sent, "{tally:?}");
}
