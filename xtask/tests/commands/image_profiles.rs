//! The inner loop's image profile (issue 15): `build-images --profile dev-image` hands the profile
//! to cargo, tags its images `dev-<hash>` and records the profile; `deploy` says when it deploys
//! such images, and refuses them for a cluster that is not local unless asked.

use std::fs;

use serde_json::Value;

use crate::support::{
    cluster::{assert_never, deployed_release_in, fixture, healthy, xtask},
    standins::{Program, Run, StandIns},
};

/// The JSON record a `build-images --dry-run --json` prints after its commands.
fn printed_record(stdout: &str) -> Value {
    let start = stdout.find("\n{").map(|i| i + 1).expect("a JSON record on stdout");
    serde_json::from_str(&stdout[start..]).unwrap()
}

#[test]
fn the_dev_image_profile_reaches_cargo_and_its_tags_and_record_say_so() {
    let standins = StandIns::new();
    let run = xtask(
        &standins,
        &[Program::new("podman")],
        &["build-images", "--dry-run", "--json", "--profile", "dev-image"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let commands: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("$ ")).collect();
    assert_eq!(
        commands[0],
        "$ cargo build --profile dev-image --locked --target x86_64-unknown-linux-gnu --package backend --package frontend"
    );
    assert!(
        commands[1].starts_with(
            "$ podman build --tag todo-backend:dev-<content-hash> --build-arg VERSION=dev-<content-hash> "
        ),
        "{}",
        commands[1]
    );
    assert!(
        commands[2].starts_with("$ podman build --tag todo-frontend:dev-<content-hash> "),
        "{}",
        commands[2]
    );
    assert!(
        run.stderr.contains("==> build dev-image binaries for linux/amd64"),
        "{}",
        run.stderr
    );
    let record = printed_record(&run.stdout);
    assert_eq!(record["profile"], "dev-image");
    let tags: Vec<&str> = record["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["dev-<content-hash>", "dev-<content-hash>"]);

    // The default stays release: its own cargo flag, bare hashes, and the profile recorded.
    let run = xtask(
        &standins,
        &[Program::new("podman")],
        &["build-images", "--dry-run", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("$ cargo build --release --locked "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("--tag todo-backend:<content-hash> "),
        "{}",
        run.stdout
    );
    assert_eq!(printed_record(&run.stdout)["profile"], "release");
    assert!(standins.invocations().is_empty(), "{:?}", standins.invocations());
}

#[test]
fn an_unknown_profile_is_refused_with_the_ones_there_are() {
    let standins = StandIns::new();
    let run = xtask(
        &standins,
        &[Program::new("podman")],
        &["build-images", "--dry-run", "--profile", "dev"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid value 'dev' for '--profile <PROFILE>'")
            && run.stderr.contains("[possible values: release, dev-image]"),
        "{}",
        run.stderr
    );
}

/// A record as `build-images --profile dev-image` writes it (the fixture's images, rebuilt with
/// that profile), optionally pushed to `registry`, in the stand-ins' folder.
fn dev_record(standins: &StandIns, registry: Option<&str>) -> String {
    let mut record: Value = serde_json::from_str(&fixture("images.json")).unwrap();
    record["profile"] = "dev-image".into();
    for image in record["images"].as_array_mut().unwrap() {
        let tag = format!("dev-{}", image["tag"].as_str().unwrap());
        let name = image["name"].as_str().unwrap().to_owned();
        image["reference"] = registry
            .map_or_else(|| format!("{name}:{tag}"), |r| format!("{r}/{name}:{tag}"))
            .into();
        image["tag"] = tag.into();
    }
    let path = standins.scratch("dev-record").join("images.json");
    fs::write(&path, record.to_string()).unwrap();
    path.display().to_string()
}

/// `deploy --dry-run --no-smoke` with `extra` arguments.
fn deploy(standins: &StandIns, programs: &[Program], extra: &[&str]) -> Run {
    let mut args = vec!["deploy", "--dry-run", "--no-smoke"];
    args.extend(extra);
    xtask(standins, programs, &args)
}

#[test]
fn a_dev_record_deploys_to_a_local_cluster_and_says_what_it_is() {
    let standins = StandIns::new();
    let record = dev_record(&standins, None);
    let run = deploy(&standins, &healthy(), &["--images", &record]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "note: these are dev-image images (tags dev-…, no LTO; for the inner loop, not to ship); \
             `cargo xtask build-images` builds the release ones"
        ),
        "{}",
        run.stderr
    );
    let upgrade = run.stdout.lines().last().unwrap();
    assert!(
        upgrade.contains("backend.image.tag=dev-3f2a9c1b7d4e")
            && upgrade.contains("frontend.image.tag=dev-8e1d2c3b4a5f"),
        "{upgrade}"
    );

    // A release record gets no such note.
    let release = crate::support::cluster::fixture_path("images.json")
        .display()
        .to_string();
    let run = deploy(&StandIns::new(), &healthy(), &["--images", &release]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(!run.stderr.contains("dev-image"), "{}", run.stderr);
}

/// `deploy` of a pushed dev record to a context that is not local, named explicitly (plus
/// `extra`): the run, its record's path and the stand-ins.
fn deploy_remote(remote: &str, extra: &[&str]) -> (Run, String, StandIns) {
    let registry = "registry.example.com/team";
    let standins = StandIns::new();
    let record = dev_record(&standins, Some(registry));
    let mut args = vec![
        "--kube-context",
        remote,
        "--images",
        &record,
        "--push",
        "--registry",
        registry,
    ];
    args.extend(extra);
    let run = deploy(&standins, &deployed_release_in(remote), &args);
    (run, record, standins)
}

#[test]
fn a_dev_record_is_refused_for_a_cluster_that_is_not_local_unless_allowed() {
    let remote = "gke_acme-prod_europe-west1_main";
    let (run, record, standins) = deploy_remote(remote, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the images in {record} are dev-image builds (no LTO; for the inner loop, not to ship) and kube context \
             {remote} is not a local cluster: deploy release images"
        )) && run.stderr.contains("or pass --allow-dev-images to deploy these anyway"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "nothing would be run");
    assert_never(&standins.invocations(), "helm upgrade");

    let (run, _, _) = deploy_remote(remote, &["--allow-dev-images"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("note: these are dev-image images"),
        "{}",
        run.stderr
    );
    let upgrade = run.stdout.lines().last().unwrap();
    assert!(upgrade.contains("backend.image.tag=dev-3f2a9c1b7d4e"), "{upgrade}");
}

#[test]
fn deploy_with_the_dev_image_profile_builds_and_deploys_dev_images() {
    let standins = StandIns::new();
    let run = deploy(&standins, &healthy(), &["--profile", "dev-image"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let build = run.stdout.lines().next().unwrap();
    assert_eq!(
        build,
        "$ cargo build --profile dev-image --locked --target x86_64-unknown-linux-gnu --package backend --package frontend"
    );
    assert!(
        run.stderr.contains("note: these are dev-image images"),
        "{}",
        run.stderr
    );
    let upgrade = run.stdout.lines().last().unwrap();
    assert!(upgrade.contains("backend.image.tag=dev-<content-hash>"), "{upgrade}");
}
