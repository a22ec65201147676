//! The container upgrade as one real pipe (issue 24): `ugw-fetch --image | ugw-swap --compose
//! | ugw-wait-healthy --expect-version | ugw-verify`, each tool reading the record the one
//! before it wrote, against the real dockerd, Compose and a loopback registry. The swap takes
//! its digest from the fetch step the pipe carries (no hand-made record), and ugw-wait-healthy
//! and ugw-verify need nothing container-specific: they judge the service's own answer.

use crate::kit;
use crate::kit::docker;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `script` in bash with our binaries on PATH and `env` set, for at most three minutes (a
/// pull, a Compose up and a health wait).
fn pipe(script: &str, dir: &Path, env: &[(&str, String)]) -> kit::Outcome {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", kit::path_with_bins())
        .env_remove("UGW_HOST_ID")
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    kit::run_within(cmd, Duration::from_secs(180))
}

/// The upgrade pipe, as an operator would type it (`$VERSION` empty: `--expect-version` with no
/// value expects the version of this run's ugw-fetch step).
const UPGRADE: &str = r#"set -o pipefail
ugw-fetch --image "$IMAGE" --digest "$DIGEST" \
  | ugw-swap --compose compose.yml --project "$PROJECT" --service api \
      --restart-check "http://127.0.0.1:$PORT/health/ready" \
  | ugw-wait-healthy --url "http://127.0.0.1:$PORT/health/ready" --expect-version $VERSION \
  | ugw-verify --checks checks.json
"#;

#[test]
fn fetch_image_swap_compose_wait_healthy_and_verify_compose_in_one_pipe() {
    let Some(_docker) = docker::require_docker() else {
        return;
    };
    let lab = docker::Lab::healthy(&["1.0.0", "2.0.0"]);
    let (dir, cleanup) = (&lab.dir, &lab.cleanup);
    let (v1, v2) = (&lab.built[0], &lab.built[1]);
    let port = kit::free_port();
    docker::compose_file(dir.path(), &v1.repository, &port.to_string());
    let project = cleanup.name("pipe");
    // A versions check with no expect: the version of this run's ugw-fetch step.
    std::fs::write(
        dir.path().join("checks.json"),
        serde_json::json!({"checks": [
            {"name": "answers", "type": "http",
             "url": format!("http://127.0.0.1:{port}/health/ready"),
             "expect": [".status == \"ok\""]},
            {"name": "version", "type": "versions",
             "urls": [format!("http://127.0.0.1:{port}/health/ready")], "path": ".version"}
        ]})
        .to_string(),
    )
    .unwrap();

    // v1 with the version given, v2 with none: both read the image step's version.
    for (image, given) in [(v1, true), (v2, false)] {
        let env = [
            ("IMAGE", image.tagged()),
            ("DIGEST", image.digest.clone()),
            ("PROJECT", project.clone()),
            ("PORT", port.to_string()),
            (
                "VERSION",
                if given {
                    image.version.clone()
                } else {
                    String::new()
                },
            ),
        ];
        let out = pipe(UPGRADE, dir.path(), &env);
        out.succeeds();
        let record = out.record();
        assert!(record.ok, "{}", out.stdout);
        let tools: Vec<&str> = record.steps.iter().map(|s| s.tool.as_str()).collect();
        assert_eq!(
            tools,
            ["ugw-fetch", "ugw-swap", "ugw-wait-healthy", "ugw-verify"],
            "one step per tool of the pipe"
        );
        assert!(
            record.steps.iter().all(|s| s.run == record.run),
            "every step is of the run the fetch began: {}",
            out.stdout
        );
        let swap = out.step("ugw-swap");
        assert_eq!(
            swap.result["current"],
            image.by_digest(),
            "the fetched digest is pinned"
        );
        assert_eq!(swap.result["mode"], "compose");
        let wait = out.step("ugw-wait-healthy").wait_result();
        assert!(wait.healthy);
        assert_eq!(wait.expect_version.as_deref(), Some(image.version.as_str()));
        let verify = out.step("ugw-verify");
        assert_eq!(verify.status, "ok", "{:#}", verify.result);
        assert_eq!(
            docker::version_on(port).as_deref(),
            Some(image.version.as_str())
        );
        let pinned =
            std::fs::read_to_string(dir.path().join(format!(".ugw/{project}.override.yml")))
                .unwrap();
        assert!(pinned.contains(&image.by_digest()), "{pinned}");
        let container = swap.result["compose"]["containers"][0].as_str().unwrap();
        assert_eq!(
            docker::inspect(container, "{{.Config.Image}}"),
            image.by_digest(),
            "the container runs the digest the image was fetched as"
        );
    }
}
