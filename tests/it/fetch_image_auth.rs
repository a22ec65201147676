//! `ugw-fetch --image` from a registry that wants credentials (issue 24), against the real
//! distribution registry with htpasswd auth and dockerd: no credentials fail; a docker config
//! folder `docker login` wrote (`DOCKER_CONFIG`) pulls; so does `--registry-login-env`; and the
//! password (and the base64 `user:password` the config holds) never shows in ugw's stdout,
//! record or stderr. `--header`/`--header-env` with `--image`, which docker pull never sent,
//! are a usage error that says where credentials go.

use crate::kit;
use crate::kit::Kind;
use crate::kit::docker::{self, Behaviour, Cleanup, Registry};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const USER: &str = "ugw-puller";

/// `USER:bcrypt(password)`, the line the registry's htpasswd file wants (bcrypt only), made
/// by Python's crypt (libxcrypt), else by `htpasswd -nbB` where apache2-utils is installed.
fn htpasswd_line(password: &str) -> Option<String> {
    let python = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|hash| hash.starts_with("$2"));
    if let Some(hash) = python {
        return Some(format!("{USER}:{hash}"));
    }
    let htpasswd = Command::new("htpasswd")
        .args(["-nbB", USER, password])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&htpasswd.stdout).trim().to_string())
}

/// `ugw-fetch --image REF ARGS` with `DOCKER_CONFIG` set to `config` and `env` added.
fn fetch(reference: &str, config: &Path, env: &[(&str, &str)], args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-fetch");
    cmd.arg("--image")
        .arg(reference)
        .args(args)
        .env("DOCKER_CONFIG", config);
    for (key, value) in env {
        cmd.env(key, value);
    }
    kit::run(cmd)
}

#[test]
fn a_private_registry_pulls_with_the_docker_config_or_login_env_and_the_password_never_shows() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cleanup = Cleanup::new();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let password = format!("pw-{}-{nanos}-Zq9", std::process::id());
    let Some(line) = htpasswd_line(&password) else {
        eprintln!("SKIPPED: neither python3's crypt nor htpasswd makes a bcrypt hash here");
        return;
    };
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{line}\n")).unwrap();
    // Pushed to an open registry; the private one serves the same storage.
    let open = Registry::start(dir.path());
    let image =
        docker::build_demo_image(&open, &cleanup.name("private"), "1.0.0", Behaviour::Healthy);
    let private = Registry::start_with_auth(dir.path(), &htpasswd);
    let reference = format!("{}/{}@{}", private.host_port(), image.repo, image.digest);
    let basic = kit::base64(format!("{USER}:{password}").as_bytes());

    // No credentials: refused by the registry, nothing pulled.
    let empty = dir.path().join("no-credentials");
    std::fs::create_dir(&empty).unwrap();
    fetch(&reference, &empty, &[], &[])
        .fails_with(Kind::Network)
        .stderr_has("no basic auth credentials");
    assert!(!docker::image_present(&reference));

    // The docker CLI's own config, as `docker login` wrote it.
    let config = dir.path().join("docker-config");
    std::fs::create_dir(&config).unwrap();
    let mut login = Command::new("docker");
    login
        .arg("--config")
        .arg(&config)
        .args([
            "login",
            &private.host_port(),
            "--username",
            USER,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), password.as_bytes()).unwrap();
    drop(child.stdin.take());
    let logged_in = kit::wait_bounded(child, kit::RUN_LIMIT);
    assert!(
        logged_in.status.success(),
        "docker login over plain HTTP to {}: {}",
        private.host_port(),
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let pulled = fetch(&reference, &config, &[], &[]);
    pulled.succeeds().never_shows(&password).never_shows(&basic);
    let step = pulled.step("ugw-fetch");
    assert_eq!(step.result["digest"], image.digest);
    assert_eq!(step.result["pulled"], true);
    assert!(docker::image_present(&reference));

    // --registry-login-env, with no credentials of the docker CLI's: its own private login.
    docker::docker_ok(&["rmi", &reference]);
    let by_env = fetch(
        &reference,
        &empty,
        &[("UGW_TEST_REGISTRY_PASSWORD", &password)],
        &[
            "--registry-login-env",
            &format!("{USER}=UGW_TEST_REGISTRY_PASSWORD"),
        ],
    );
    by_env.succeeds().never_shows(&password).never_shows(&basic);
    assert_eq!(by_env.step("ugw-fetch").result["pulled"], true);
    assert!(
        std::fs::read_dir(&empty).unwrap().next().is_none(),
        "the docker config given is not written to"
    );
}

#[test]
fn an_http_header_with_image_is_a_usage_error_that_says_where_credentials_go() {
    let dir = tempfile::tempdir().unwrap();
    let reference = "127.0.0.1:5999/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let token = "header-token-Qx7";
    for (flag, value, env) in [
        ("--header", format!("Authorization: Bearer {token}"), None),
        (
            "--header-env",
            "Authorization=UGW_TEST_TOKEN".to_string(),
            Some(token),
        ),
    ] {
        let env: Vec<(&str, &str)> = env.map(|t| ("UGW_TEST_TOKEN", t)).into_iter().collect();
        let out = fetch(reference, dir.path(), &env, &[flag, &value]).case(flag);
        out.fails_with(Kind::Usage)
            .stderr_has(format!("{flag} does not apply to --image"))
            .stderr_has("DOCKER_CONFIG")
            .stderr_has("--registry-login-env")
            .never_shows(token);
    }
}
