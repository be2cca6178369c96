//! The inner loop's bench (issue 15): `cargo xtask dev` on a copy of the real tree, with the real
//! compiler and the real image engine (Podman) and stand-ins for the cluster's tools (those of
//! the `dev` scenario tests), and three real edits:
//!
//! - a save that leaves a frontend file as it was: nothing built, nothing deployed;
//! - a one-line change in `frontend/` (and its revert): the frontend's image rebuilt and
//!   redeployed, the backend's left alone;
//! - a comment added in `backend/`: the backend rebuilt, and since its binary is the same, the
//!   same tag: nothing loaded, no `helm upgrade`.
//!
//! Each goal is printed as measured / goal / pass, and the figures are written as JSON. Run by
//! `cargo xtask bench --inner-loop` (`cargo bench -p xtask --bench inner_loop --profile dev`).
//! The copy is built in this project's target folder, so the dependencies of the `dev-image`
//! profile are compiled once and shared; the copy's own crates are compiled on the first deploy.

// The test support serves every scenario (its own unit tests are compiled out here); this bench
// uses part of it.
#[allow(dead_code, unused_imports)]
#[path = "../tests/commands/support/mod.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/commands/dev/project.rs"]
mod project;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use self::{
    project::{
        Project, REAL_BACKEND_FILE as BACKEND_FILE, REAL_FRONTEND_FILE as FRONTEND_FILE,
        REAL_FRONTEND_LINE as FRONTEND_LINE, Session, cluster,
    },
    support::standins::StandIns,
};

/// The goals: seconds from the save to the new image, and for a no-op save.
const IMAGE_READY_GOAL: f64 = 8.0;
const NO_OP_GOAL: f64 = 1.0;

fn main() {
    // cargo runs a bench in its package's folder: a relative `--json` is taken from the
    // workspace's root (`cargo xtask bench --inner-loop` passes an absolute path).
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::args()
        .skip_while(|arg| arg != "--json")
        .nth(1)
        .map(|path| root.join(path));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    eprintln!("==> copying the project's tracked files, then `cargo xtask dev` on the copy");
    let (standins, project) = (StandIns::new(), Project::copy_of_real_tree(target));
    let started = Instant::now();
    // The serving checks run too: the stand-in's port-forwards run the images' binaries, the
    // frontend reaching the backend through the backend's forward.
    let session = Session::start(&standins, &project, &cluster(&standins, &project), &[]);
    let first_deploy = started.elapsed();
    eprintln!("    first deploy: {first_deploy:.1?} (the copy's crates compiled, both images built)");

    let no_op = no_op_save(&session, &project, &standins);
    let mut frontend = Vec::new();
    for (from, to) in [FRONTEND_LINE, (FRONTEND_LINE.1, FRONTEND_LINE.0)] {
        project.edit(FRONTEND_FILE, from, to);
        frontend.push(expect_cycle(&session, &["frontend"], true));
    }
    let text = project.read(BACKEND_FILE);
    project.write(
        BACKEND_FILE,
        &format!("{text}// A comment: the binary stays the same.\n"),
    );
    let comment = expect_cycle(&session, &["backend"], false);
    let (code, _) = session.interrupt();
    assert_eq!(code, 0, "dev did not stop cleanly on Ctrl-C");

    let goals = goals(&frontend, no_op, &comment);
    print_results(&frontend, &comment, &goals);
    let report = json!({
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "first_deploy_ms": first_deploy.as_millis(),
        "no_op_seconds": no_op,
        "frontend_cycles": frontend,
        "backend_comment_cycle": comment,
        "goals": goals,
    });
    if let Some(out) = out {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        eprintln!("    written to {}", out.display());
    }
    let missed = goals.iter().filter(|goal| goal["pass"] == false).count();
    if missed > 0 {
        eprintln!("{missed} goal(s) missed");
        std::process::exit(1);
    }
}

/// The goals, each measured / goal / pass.
fn goals(frontend: &[Value], no_op: f64, comment: &Value) -> [Value; 3] {
    let image_ready: Vec<f64> = frontend.iter().map(image_ready_seconds).collect();
    let worst = image_ready.iter().copied().fold(0.0, f64::max);
    [
        goal(
            "one-line change in frontend/: saved -> new image ready (the slower of change and revert)",
            format!("{worst:.2} s"),
            format!("<= {IMAGE_READY_GOAL} s"),
            worst <= IMAGE_READY_GOAL,
        ),
        goal(
            "no-op save: no rebuild, no deploy, seen within",
            format!("{no_op:.2} s"),
            format!("< {NO_OP_GOAL} s"),
            no_op < NO_OP_GOAL,
        ),
        goal(
            "comment-only change in backend/: rebuilt, same image, nothing deployed",
            format!(
                "built {}, loaded {}, upgraded {}",
                comment["built"], comment["loaded"], comment["upgraded"]
            ),
            "built [backend], loaded [], upgraded false".to_owned(),
            comment["built"] == json!(["backend"])
                && comment["loaded"] == json!([])
                && comment["upgraded"] == json!(false),
        ),
    ]
}

/// Saves a frontend file with its own content; returns the seconds until `dev` said it was
/// unchanged, having built and deployed nothing.
fn no_op_save(session: &Session, project: &Project, standins: &StandIns) -> f64 {
    let calls_before = standins.invocations().len();
    let saved = Instant::now();
    project.write(FRONTEND_FILE, &project.read(FRONTEND_FILE));
    session.wait_for_log(&format!("==> {FRONTEND_FILE} saved with the content it had"));
    let seen = saved.elapsed().as_secs_f64();
    session.assert_quiet(Duration::from_secs(2));
    let cluster_calls: Vec<String> = (standins.invocations().into_iter().skip(calls_before))
        .filter(|call| call.starts_with("helm upgrade") || call.starts_with("minikube image load"))
        .collect();
    assert!(cluster_calls.is_empty(), "a no-op save deployed: {cluster_calls:?}");
    seen
}

/// The next cycle, which must have built exactly `built` and deployed (or not).
fn expect_cycle(session: &Session, built: &[&str], deployed: bool) -> Value {
    let cycle = session.next_line();
    assert_eq!(cycle["event"], "cycle", "{cycle}");
    assert_eq!(cycle["built"], json!(built), "{cycle}");
    assert_eq!(cycle["upgraded"], json!(deployed), "{cycle}");
    let expected = if deployed { "deployed" } else { "unchanged" };
    assert_eq!(cycle["outcome"], expected, "{cycle}");
    cycle
}

/// Seconds from the first save to the new image: the quiet period, cargo and the image.
fn image_ready_seconds(cycle: &Value) -> f64 {
    let stages = &cycle["stages_ms"];
    let ms: u64 = ["saved", "compiled", "image"]
        .iter()
        .map(|stage| stages[stage].as_u64().unwrap_or(0))
        .sum();
    ms as f64 / 1000.0
}

fn goal(name: &str, measured: String, goal: String, pass: bool) -> Value {
    json!({"goal": name, "measured": measured, "target": goal, "pass": pass})
}

fn print_results(frontend: &[Value], comment: &Value, goals: &[Value]) {
    println!(
        "| cycle | saved | compiled | image | loaded | rolled out | serving | total |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let rows = [
        ("one-line change in frontend/", &frontend[0]),
        ("its revert", &frontend[1]),
        ("comment in backend/", comment),
    ];
    for (name, cycle) in rows {
        let stage = |key: &str| {
            cycle["stages_ms"][key]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.2} s |",
            stage("saved"),
            stage("compiled"),
            stage("image"),
            stage("loaded"),
            stage("rolled_out"),
            stage("serving"),
            cycle["total_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
        );
    }
    println!("\n| goal | measured | goal | |\n|---|---|---|---|");
    for goal in goals {
        let pass = if goal["pass"] == true { "met" } else { "**missed**" };
        println!(
            "| {} | {} | {} | {pass} |",
            goal["goal"].as_str().unwrap(),
            goal["measured"].as_str().unwrap(),
            goal["target"].as_str().unwrap()
        );
    }
}
