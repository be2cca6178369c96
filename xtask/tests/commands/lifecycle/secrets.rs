//! `cargo xtask secrets`: values on stdin only, rotation, and nothing changed when up to date.

use super::*;

fn secrets(standins: &StandIns, programs: &[Program], args: &[&str], env: &[(&str, &str)]) -> Run {
    standins.install_all(programs);
    let mut command = standins.command(env!("CARGO_BIN_EXE_xtask"));
    command.arg("secrets").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    run(&mut command)
}

#[test]
fn secrets_creates_the_secret_from_the_environment_on_stdin_only() {
    let key = "sk-live-Aa11Bb22Cc33Dd44";
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                &query("get secret todo-secrets -o json"),
                not_found("secrets \"todo-secrets\""),
            )
            .on(
                &write("create -f -"),
                Reply::ok("secret/todo-secrets created\n").recording_stdin(),
            )
    });
    let run = secrets(
        &standins,
        &programs,
        &["--openai-key-from-env"],
        &[("OPENAI_API_KEY", key)],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Secret todo-secrets created in namespace todo with keys: JWT_SECRET, OPENAI_API_KEY\n"
    );
    let manifest: Value = serde_json::from_str(standins.stdin_log().trim()).unwrap();
    assert_eq!(manifest["stringData"]["OPENAI_API_KEY"], key);
    assert_eq!(manifest["stringData"]["JWT_SECRET"].as_str().unwrap().len(), 64);
    let invocations = standins.invocations().join("\n");
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("argv", &invocations)] {
        assert!(!text.contains(key), "{what} shows the key");
    }
    // Nothing ran the pods yet: nothing to restart.
    assert_never(&standins.invocations(), &format!("kubectl {}", write("rollout")));
}

#[test]
fn rotating_the_jwt_secret_patches_it_on_stdin_and_restarts_the_deployments() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                &write("patch secret todo-secrets --type=merge --patch-file=/dev/stdin"),
                Reply::ok("secret/todo-secrets patched\n").recording_stdin(),
            )
            .on(
                &query("get deployments -l app.kubernetes.io/instance=todo -o name"),
                Reply::ok("deployment.apps/todo-backend\ndeployment.apps/todo-frontend\n"),
            )
            .on(
                &write("rollout restart deployment.apps/todo-backend deployment.apps/todo-frontend"),
                Reply::ok("deployment.apps/todo-backend restarted\ndeployment.apps/todo-frontend restarted\n"),
            )
    });
    let run = secrets(&standins, &programs, &["--rotate-jwt"], &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_in_order(
        &standins.invocations(),
        &[
            &format!("kubectl {}", query("get secret todo-secrets -o json")),
            &format!(
                "kubectl {}",
                write("patch secret todo-secrets --type=merge --patch-file=/dev/stdin")
            ),
            &format!(
                "kubectl {}",
                write("rollout restart deployment.apps/todo-backend deployment.apps/todo-frontend")
            ),
        ],
    );
    let patch: Value = serde_json::from_str(standins.stdin_log().trim()).unwrap();
    let fresh = patch["stringData"]["JWT_SECRET"].as_str().unwrap();
    assert_eq!(fresh.len(), 64);
    assert_ne!(
        fresh,
        crate::support::cluster::SECRET_VALUES[0],
        "a rotation makes a new secret"
    );
    assert_eq!(
        patch["stringData"].as_object().unwrap().len(),
        1,
        "only the rotated key is sent"
    );
    assert_eq!(run.stdout, "Secret todo-secrets in namespace todo: set JWT_SECRET\n");
    assert_no_secret("stderr", &run.stderr);
    assert!(!run.stderr.contains(fresh) && !run.stdout.contains(fresh));
}

#[test]
fn secrets_fail_without_the_value_and_change_nothing_when_up_to_date() {
    let standins = StandIns::new();
    let run = secrets(&standins, &healthy(), &["--database-url-from-env"], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: DATABASE_URL is not set in the environment"
    );
    assert!(
        standins
            .invocations()
            .iter()
            .all(|line| !line.contains(" patch ") && !line.contains(" create "))
    );

    let standins = StandIns::new();
    let run = secrets(
        &standins,
        &healthy(),
        &["--database-url-from-env"],
        &[(
            "DATABASE_URL",
            "postgres://todo:hunter2-db-pass@db.example.com:5432/todo",
        )],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Secret todo-secrets in namespace todo is up to date (keys: DATABASE_URL, JWT_SECRET, OPENAI_API_KEY)\n"
    );
    assert_never(&standins.invocations(), &format!("kubectl {}", write("patch")));

    let standins = StandIns::new();
    let run = secrets(&standins, &healthy(), &["--prompt", "OPENAI_API_KEY"], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("error: cannot ask for OPENAI_API_KEY: stdin is not a terminal"),
        "{}",
        run.stderr
    );
}
