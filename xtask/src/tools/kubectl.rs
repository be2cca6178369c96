//! kubectl: the request timeout every call carries, and its version against the API server's.

use anyhow::Context;
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::exec::probe::{self, PROBE_TIMEOUT};

/// Passed to every kubectl call that may reach the API server: a dead or unreachable cluster
/// then costs five seconds and an error, never a hang.
pub const KUBECTL_REQUEST_TIMEOUT: &str = "--request-timeout=5s";

/// A Kubernetes version as `gitVersion` gives it (`v1.32.4`, `v1.30.0-gke.1`, `v1.32.4+k3s1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    /// The major version (1).
    pub major: u32,
    /// The minor version, which is what the version skew policy counts.
    pub minor: u32,
    /// The version as reported.
    pub git_version: String,
}

impl KubeVersion {
    /// Parses a `gitVersion` such as `v1.32.4-dispatcher`.
    pub fn parse(git_version: &str) -> Option<KubeVersion> {
        let core = git_version.trim().strip_prefix('v').unwrap_or(git_version.trim());
        let mut parts = core.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KubeVersion {
            major,
            minor,
            git_version: git_version.trim().to_owned(),
        })
    }
}

/// kubectl's own version and, when the API server answered, the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlVersion {
    /// The client (kubectl) version.
    pub client: KubeVersion,
    /// The server version, or why it could not be read.
    pub server: Result<KubeVersion, String>,
}

/// `kubectl version -o json`: the client version, and the server's when it is reachable.
pub fn kubectl_version(sh: &Shell) -> anyhow::Result<KubectlVersion> {
    let probe = probe::run(
        cmd!(sh, "kubectl version -o json {KUBECTL_REQUEST_TIMEOUT}"),
        PROBE_TIMEOUT,
    );
    // kubectl prints the client part and exits 1 when the server does not answer.
    let (client, server) = parse_kubectl_version(&probe.stdout).map_err(|err| {
        if probe.succeeded() {
            err
        } else {
            anyhow::anyhow!("{}", probe.failure())
        }
    })?;
    let server = match server {
        Some(server) => Ok(server),
        None if probe.succeeded() => Err("the server did not report its version".to_owned()),
        None => Err(probe.failure()),
    };
    Ok(KubectlVersion { client, server })
}

/// Parses `kubectl version -o json` into the client and (if present) server versions.
pub fn parse_kubectl_version(json: &str) -> anyhow::Result<(KubeVersion, Option<KubeVersion>)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versions {
        client_version: Option<Info>,
        server_version: Option<Info>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Info {
        git_version: String,
    }
    let versions: Versions = serde_json::from_str(json).context("reading `kubectl version -o json`")?;
    let info = versions
        .client_version
        .context("`kubectl version -o json` has no clientVersion")?;
    let client = KubeVersion::parse(&info.git_version)
        .with_context(|| format!("unreadable kubectl version {:?}", info.git_version))?;
    let server = versions
        .server_version
        .and_then(|info| KubeVersion::parse(&info.git_version));
    Ok((client, server))
}

/// Minor versions between kubectl and the server: positive when kubectl is newer.
/// `None` when the major versions differ (never supported).
pub fn kubectl_skew(client: &KubeVersion, server: &KubeVersion) -> Option<i64> {
    (client.major == server.major).then(|| i64::from(client.minor) - i64::from(server.minor))
}

/// Kubernetes supports kubectl within one minor version of the API server.
pub fn kubectl_supported(client: &KubeVersion, server: &KubeVersion) -> bool {
    kubectl_skew(client, server).is_some_and(|skew| skew.abs() <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real output of kubectl v1.32.4 (this machine's /usr/bin/kubectl) with no cluster configured:
    // stdout as below, exit code 1, and on stderr "The connection to the server localhost:8080
    // was refused - did you specify the right host or port?".
    const KUBECTL_VERSION_NO_SERVER: &str = r#"{
  "clientVersion": {
    "major": "1",
    "minor": "32+",
    "gitVersion": "v1.32.4-dispatcher",
    "gitCommit": "4cb5f0764b8d5f425645c6f433394fede34a8a26",
    "gitTreeState": "clean",
    "buildDate": "2025-05-15T20:09:34Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64"
  },
  "kustomizeVersion": "v5.5.0"
}"#;

    // The same shape with a reachable server (Minikube v1.35's default Kubernetes, v1.32.0).
    const KUBECTL_VERSION_WITH_SERVER: &str = r#"{
  "clientVersion": {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.1",
    "gitCommit": "f78e722310e50bcaca9276be22276d9e91d91308",
    "gitTreeState": "clean",
    "buildDate": "2026-09-23T17:10:04Z",
    "goVersion": "go1.26.8",
    "compiler": "gc",
    "platform": "linux/amd64"
  },
  "kustomizeVersion": "v5.8.1",
  "serverVersion": {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T17:59:15Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64"
  }
}"#;

    #[test]
    fn kubectl_version_without_a_server_gives_the_client_only() {
        let (client, server) = parse_kubectl_version(KUBECTL_VERSION_NO_SERVER).unwrap();
        assert_eq!((client.major, client.minor), (1, 32));
        assert_eq!(client.git_version, "v1.32.4-dispatcher");
        assert_eq!(server, None);
    }

    #[test]
    fn kubectl_version_with_a_server_gives_both() {
        let (client, server) = parse_kubectl_version(KUBECTL_VERSION_WITH_SERVER).unwrap();
        let server = server.unwrap();
        assert_eq!((client.minor, server.minor), (37, 32));
        assert_eq!(kubectl_skew(&client, &server), Some(5));
        assert!(!kubectl_supported(&client, &server));
    }

    #[test]
    fn kubectl_is_supported_within_one_minor_either_way() {
        let v = |s| KubeVersion::parse(s).unwrap();
        assert!(kubectl_supported(&v("v1.31.2"), &v("v1.32.0")));
        assert!(kubectl_supported(&v("v1.33.0"), &v("v1.32.0")));
        assert!(kubectl_supported(&v("v1.32.4+k3s1"), &v("v1.32.0-gke.100")));
        assert!(!kubectl_supported(&v("v1.30.0"), &v("v1.32.0")));
        assert!(!kubectl_supported(&v("v2.32.0"), &v("v1.32.0")));
    }

    #[test]
    fn garbage_from_kubectl_is_an_error_not_a_panic() {
        assert!(parse_kubectl_version("").is_err());
        assert!(parse_kubectl_version(r#"{"kustomizeVersion":"v5.5.0"}"#).is_err());
    }
}
