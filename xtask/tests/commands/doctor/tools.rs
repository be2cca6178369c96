//! `doctor` scenarios about the tools on this machine: Helm missing or too old, Docker without
//! its daemon, Podman's container DNS, disk space, and the help text.

use super::*;

#[test]
fn helm_missing_fails_with_the_install_command() {
    let (run, invocations) = doctor(&without(healthy(), "helm"), &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_row(
        &run.stdout,
        "FAIL    helm             not installed",
        Some("install helm: https://helm.sh/docs/intro/install/ (Helm 3 or 4)"),
    );
    assert!(
        run.stdout.ends_with("\n12 ok, 0 warn, 1 FAIL, 0 skip: not ready: do what the FAIL lines say, then run `cargo xtask doctor` again\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("error: 1 required check(s) failed"),
        "{}",
        run.stderr
    );
    assert!(
        !invocations.iter().any(|line| line.starts_with("helm")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&without(healthy(), "helm"), &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    let helm = json_check(&report, "helm");
    assert_eq!(helm["status"], "fail");
    assert_eq!(helm["detail"], "not installed");
    assert_eq!(
        helm["fix"],
        "install helm: https://helm.sh/docs/intro/install/ (Helm 3 or 4)"
    );
}

#[test]
fn helm_2_is_unsupported_with_an_upgrade_hint() {
    // Helm 2 prints its client version, then fails to find Tiller.
    let helm2 = Program::new("helm").on(
        "version --short",
        Reply::fail(1, "Error: could not find tiller\n").with_stdout("Client: v2.17.0+ga690bad\n"),
    );
    let programs = replace(healthy(), helm2);
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_row(
        &run.stdout,
        "FAIL    helm             v2.17.0: Helm 2 is not supported (Helm 3 or 4 is)",
        Some("upgrade Helm (Helm 2 and Tiller are end-of-life): https://helm.sh/docs/intro/install/"),
    );
    assert!(
        run.stdout.contains("\n12 ok, 0 warn, 1 FAIL, 0 skip: not ready"),
        "{}",
        run.stdout
    );
    assert!(invocations.contains(&"helm version --short".to_owned()));
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    assert_eq!(json_check(&report, "helm")["status"], "fail");
    assert_eq!(json_check(&report, "kubectl")["status"], "ok");
}

#[test]
fn docker_client_without_daemon_passes_when_podman_is_present() {
    let programs = change(healthy(), "docker", |docker| {
        docker.on(
            "info --format {{.ServerVersion}}",
            Reply::fail(
                1,
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
            )
            .with_stdout("\n"),
        )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_row(
        &run.stdout,
        "warn    docker           client 27.4.1 only, daemon not reachable (Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?)",
        Some(
            "start the Docker daemon: sudo systemctl start docker (Docker Desktop: open it); or keep using podman, which works",
        ),
    );
    assert_row(&run.stdout, "ok      podman           5.3.1", None);
    // Podman is the engine now, so its DNS is examined; these helpers folders have no aardvark-dns.
    assert_row(
        &run.stdout,
        "warn    container-dns    podman netavark backend with no aardvark-dns: containers cannot find each other by name (cargo xtask e2e needs it)",
        Some("sudo apt-get install -y aardvark-dns   (Fedora/RHEL: sudo dnf install -y aardvark-dns)"),
    );
    assert!(
        invocations.contains(&"podman info --format json".to_owned()),
        "{invocations:?}"
    );
    assert!(
        run.stdout
            .ends_with("\n11 ok, 2 warn, 0 FAIL, 0 skip: ready (the warnings are advice)\n"),
        "{}",
        run.stdout
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 0);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], true);
    assert_eq!(json_check(&report, "docker")["status"], "warn");
    assert_eq!(json_check(&report, "podman")["status"], "ok");

    // Without podman the same docker is a failure: no engine can build images.
    let (alone, _) = doctor(&without(programs, "podman"), &[]);
    assert_eq!(alone.code, 1);
    assert!(
        alone
            .stdout
            .contains("FAIL    docker           client 27.4.1 only, daemon not reachable"),
        "{}",
        alone.stdout
    );
    assert_row(
        &alone.stdout,
        "FAIL    podman           not installed (docker or podman is needed)",
        Some(
            "install podman: sudo apt-get install -y podman runc netavark aardvark-dns   (other systems: https://podman.io/docs/installation)",
        ),
    );
}

/// The engine e2e uses without a Docker daemon: Podman, with the network backend `podman info`
/// reports and the DNS helper found (or not) where that containers.conf says Podman looks.
#[test]
fn podman_container_dns_is_reported_with_its_fix() {
    let no_daemon = change(healthy(), "docker", |docker| {
        docker.on(
            "info --format {{.ServerVersion}}",
            Reply::fail(
                1,
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
            )
            .with_stdout("\n"),
        )
    });
    let (netavark, invocations) = doctor_with_podman_helpers(&no_daemon, &[], &["netavark", "aardvark-dns"]);
    assert_eq!(netavark.code, 0, "{}", netavark.stderr);
    let row = netavark
        .stdout
        .lines()
        .find(|line| line.contains("container-dns"))
        .unwrap_or_else(|| panic!("no container-dns row:\n{}", netavark.stdout));
    assert!(
        row.starts_with(
            "ok      container-dns    podman netavark backend, containers find each other by name (aardvark-dns at /"
        ) && row.ends_with("/podman-helpers/aardvark-dns)"),
        "{row}"
    );
    assert_read_only(&invocations);

    let cni = change(no_daemon, "podman", |podman| {
        podman.on("info --format json", Reply::ok(PODMAN_INFO_CNI))
    });
    let (run, _) = doctor_with_podman_helpers(&cni, &[], &["aardvark-dns"]);
    assert_eq!(run.code, 0, "a warning, not a failure:\n{}", run.stdout);
    assert_row(
        &run.stdout,
        "warn    container-dns    podman cni backend with no dnsname: containers cannot find each other by name (cargo xtask e2e needs it)",
        Some(
            "sudo apt-get install -y golang-github-containernetworking-plugin-dnsname   (Fedora/RHEL: sudo dnf install -y \
             podman-plugins); or move to netavark: sudo apt-get install -y netavark aardvark-dns, set network_backend = \
             \"netavark\" under [network] in /etc/containers/containers.conf, then podman system reset",
        ),
    );
    let (json_run, _) = doctor_with_podman_helpers(&cni, &["--json"], &[]);
    let report = json_report(&json_run);
    let check = json_check(&report, "container-dns");
    assert_eq!(check["status"], "warn");
    assert_eq!(
        check["detail"],
        "podman cni backend with no dnsname: containers cannot find each other by name (cargo xtask e2e needs it)"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .starts_with("sudo apt-get install -y golang-github-containernetworking-plugin-dnsname"),
        "{check}"
    );

    let broken = change(cni, "podman", |podman| {
        podman.on("info --format json", Reply::fail(125, "Error: cannot open storage\n"))
    });
    let (run, _) = doctor_with_podman_helpers(&broken, &[], &[]);
    let row = run.stdout.lines().find(|line| line.contains("container-dns")).unwrap();
    assert!(
        row.starts_with("warn    container-dns    podman info failed, so container DNS is unknown: "),
        "{row}"
    );
}

#[test]
fn low_disk_space_warns_then_fails() {
    let at = |kib: u64| replace(healthy(), Program::new("df").on("-Pk *", Reply::ok(df(kib))));
    let (low, _) = doctor(&at(5 * GIB_IN_KIB), &[]);
    assert_eq!(low.code, 0);
    assert!(
        low.stdout
            .contains("warn    disk             5.0 GiB free on / (less than 10 GiB)"),
        "{}",
        low.stdout
    );
    let (full, _) = doctor(&at(GIB_IN_KIB), &["--json"]);
    assert_eq!(full.code, 1);
    let report = json_report(&full);
    assert_eq!(json_check(&report, "disk")["status"], "fail");
    assert_eq!(
        json_check(&report, "disk")["detail"],
        "1.0 GiB free on / (needs at least 2 GiB)"
    );
}

#[test]
fn help_describes_the_command() {
    let standins = StandIns::new();
    let help = run(standins.command(env!("CARGO_BIN_EXE_xtask")).args(["doctor", "--help"]));
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--json"), "{}", help.stdout);
    assert!(standins.invocations().is_empty(), "--help ran programs");
}
