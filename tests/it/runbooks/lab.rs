//! lib.sh's own promises about a Compose lab, checked without building a whole runbook's lab:
//! `lab_stop` takes down whatever a runbook left of the projects the lab recorded.

use super::*;

/// A start-first swap leaves its slots as projects PROJECT-PORT; `lab_stop` removes them with
/// the recorded project, and only them (PROJECT-x1 is some other project).
#[test]
fn lab_stop_takes_down_the_start_first_slots_of_a_recorded_project() {
    if kit::docker::require_docker().is_none() {
        return;
    }
    let cleanup = kit::docker::Cleanup::new();
    let dir = tempfile::tempdir().unwrap();
    // An image with nothing in it (an empty tar: two zero blocks): the containers are only
    // created, never started.
    let empty = dir.path().join("empty.tar");
    std::fs::write(&empty, [0u8; 1024]).unwrap();
    let image = format!("{}:1", cleanup.name("empty"));
    kit::docker::docker_ok(&["import", kit::s(&empty), &image]);
    let project = cleanup.name("stack");
    let create = |name: &str, project: &str| {
        kit::docker::docker_ok(&[
            "create",
            "--name",
            &cleanup.name(name),
            "--label",
            &format!("com.docker.compose.project={project}"),
            &image,
            "/nothing",
        ])
    };
    create("main", &project);
    create("slot", &format!("{project}-8081"));
    create("other", &format!("{project}-x1"));
    std::fs::write(
        dir.path().join("compose-projects"),
        format!("{project}\t{}/compose.yml\t\n", dir.path().display()),
    )
    .unwrap();

    let lib = examples().join("lib.sh");
    let out = kit::run({
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(r#"source "$1" && lab_stop "$2""#)
            .args(["lab_stop", kit::s(&lib), kit::s(dir.path())])
            .stdin(Stdio::null());
        cmd
    });
    assert_eq!(out.code, 0, "{}", out.stderr);
    let left = kit::docker::docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let ours: Vec<&str> = left
        .lines()
        .filter(|n| n.starts_with(cleanup.prefix()))
        .collect();
    assert_eq!(ours, [cleanup.name("other")], "{left}");
}
