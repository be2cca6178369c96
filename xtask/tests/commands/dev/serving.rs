//! The serving checks after a rollout: the new build must be the one that answers.

use self::project::forward_to_first_build;
use super::*;

#[test]
fn a_rollout_whose_forward_still_reaches_the_old_build_is_not_serving() {
    let (standins, project) = (StandIns::new(), Project::new());
    let programs = change(cluster(&standins, &project), "kubectl", |kubectl| {
        kubectl.on(&forward_pattern("backend"), forward_to_first_build(&standins, &project))
    });
    let session = Session::start(&standins, &project, &programs, &["--no-logs"]);
    let first = tag(&session.ready, "backend");
    project.edit(BACKEND, "hello from backend", "hello again from backend");
    let cycle = session.next_line();
    assert_eq!(cycle["outcome"], "not_serving", "{cycle}");
    assert_eq!(cycle["upgraded"], true, "{cycle}");
    let new = tag(&cycle, "backend");
    assert_ne!(new, first);
    let error = cycle["error"].as_str().unwrap();
    assert!(error.starts_with("not serving: "), "{error}");
    assert!(error.contains(&first), "{error}");
    assert!(
        session.stderr().contains("rolled out, but NOT serving"),
        "{}",
        session.stderr()
    );
}
