//! How a container engine lets containers on one network find each other by name, and what to
//! do when they cannot.
//!
//! The end-to-end run gives the backend container its Service name as a network alias, and the
//! frontend reaches it by that name, exactly as in the cluster. That needs a DNS server on the
//! engine's network: Docker has one built in on user-defined networks; Podman has one only when
//! its network backend has its DNS part — `aardvark-dns` for netavark, the `dnsname` plugin for
//! CNI. Without it every container starts and answers its own health check, and the first
//! request from one to the other fails (a 503 at sign-up), so both `e2e` and `doctor` name the
//! cause and the command that fixes it instead.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::tools::engine::Engine;

/// Podman's network backend, as `podman info` names it (`host.networkBackend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodmanBackend {
    /// netavark: DNS by `aardvark-dns`.
    Netavark,
    /// CNI plugins: DNS by the `dnsname` plugin.
    Cni,
    /// A backend this tool does not know.
    Other(String),
}

impl PodmanBackend {
    /// The name `podman info` uses.
    pub fn name(&self) -> &str {
        match self {
            Self::Netavark => "netavark",
            Self::Cni => "cni",
            Self::Other(name) => name,
        }
    }

    /// The program that serves DNS for this backend.
    pub fn dns_program(&self) -> Option<&'static str> {
        match self {
            Self::Netavark => Some("aardvark-dns"),
            Self::Cni => Some("dnsname"),
            Self::Other(_) => None,
        }
    }

    /// The command that installs the missing DNS part of this backend.
    pub fn dns_fix(&self) -> String {
        match self {
            Self::Netavark => {
                "sudo apt-get install -y aardvark-dns   (Fedora/RHEL: sudo dnf install -y aardvark-dns)".to_owned()
            }
            Self::Cni => format!(
                "sudo apt-get install -y golang-github-containernetworking-plugin-dnsname   (Fedora/RHEL: sudo dnf \
                 install -y podman-plugins); or move to netavark: {SWITCH_TO_NETAVARK}"
            ),
            Self::Other(name) => format!("use Podman's netavark backend ({SWITCH_TO_NETAVARK}) instead of {name:?}"),
        }
    }
}

/// How to move Podman to netavark with DNS; the backend is chosen once per machine, so the
/// setting and a reset (which removes Podman's containers, images and networks) are both needed.
pub const SWITCH_TO_NETAVARK: &str = "sudo apt-get install -y netavark aardvark-dns, set network_backend = \"netavark\" \
     under [network] in /etc/containers/containers.conf, then podman system reset";

/// What Docker users do when its embedded DNS does not answer.
pub const DOCKER_DNS_FIX: &str = "restart the daemon (sudo systemctl restart docker; Docker Desktop: Restart) and make sure \
     /etc/docker/daemon.json does not set \"iptables\": false, which disables the embedded DNS";

/// What `podman info --format json` says about networking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodmanNetworkInfo {
    /// The backend in use.
    pub backend: PodmanBackend,
    /// Where Podman found the DNS program, when it says so (Podman 4.5 and later report
    /// `host.networkBackendInfo.dns`; 4.3, Debian 12's, reports only the backend's name).
    pub dns_path: Option<Option<PathBuf>>,
}

/// Reads `podman info --format json`.
///
/// Shapes: Podman 4.3 (Debian 12) has `host.networkBackend` only; later versions add
/// `host.networkBackendInfo` whose `dns.path` is the DNS program, empty or absent when it was not
/// found (containers/common `libnetwork/{netavark,cni}/network.go`, `NetworkInfo`).
pub fn parse_podman_info(json: &str) -> anyhow::Result<PodmanNetworkInfo> {
    #[derive(Deserialize)]
    struct Info {
        host: Host,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Host {
        network_backend: String,
        network_backend_info: Option<BackendInfo>,
    }
    #[derive(Deserialize)]
    struct BackendInfo {
        dns: Option<Dns>,
    }
    #[derive(Deserialize)]
    struct Dns {
        path: Option<String>,
    }
    let info: Info = serde_json::from_str(json).context("reading `podman info --format json`")?;
    let backend = match info.host.network_backend.as_str() {
        "netavark" => PodmanBackend::Netavark,
        "cni" => PodmanBackend::Cni,
        other => PodmanBackend::Other(other.to_owned()),
    };
    let dns_path = info.host.network_backend_info.map(|backend_info| {
        backend_info
            .dns
            .and_then(|dns| dns.path)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    });
    Ok(PodmanNetworkInfo { backend, dns_path })
}

/// Where Podman looks for helper programs (netavark, aardvark-dns) and CNI plugins, from its
/// containers.conf, or its built-in defaults (containers/common `pkg/config/default.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodmanSearchDirs {
    /// `[engine] helper_binaries_dir`.
    pub helpers: Vec<PathBuf>,
    /// `[network] cni_plugin_dirs`.
    pub cni_plugins: Vec<PathBuf>,
}

impl Default for PodmanSearchDirs {
    fn default() -> Self {
        let paths = |dirs: &[&str]| dirs.iter().map(PathBuf::from).collect();
        Self {
            helpers: paths(&[
                "/usr/local/libexec/podman",
                "/usr/local/lib/podman",
                "/usr/libexec/podman",
                "/usr/lib/podman",
            ]),
            cni_plugins: paths(&[
                "/usr/local/libexec/cni",
                "/usr/libexec/cni",
                "/usr/local/lib/cni",
                "/usr/lib/cni",
                "/opt/cni/bin",
            ]),
        }
    }
}

impl PodmanSearchDirs {
    /// The directories Podman uses on this machine: `CONTAINERS_CONF` alone when it is set (as
    /// Podman does), else the system and user containers.conf files, later ones overriding.
    pub fn of_this_machine() -> anyhow::Result<Self> {
        let files: Vec<PathBuf> = match std::env::var_os("CONTAINERS_CONF") {
            Some(file) => vec![PathBuf::from(file)],
            None => {
                let mut files = vec![
                    PathBuf::from("/usr/share/containers/containers.conf"),
                    PathBuf::from("/etc/containers/containers.conf"),
                ];
                let config_home = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")));
                files.extend(config_home.map(|dir| dir.join("containers/containers.conf")));
                files
            }
        };
        let mut dirs = Self::default();
        for file in files.iter().filter(|file| file.is_file()) {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            dirs.apply(&text)
                .with_context(|| format!("reading {}", file.display()))?;
        }
        Ok(dirs)
    }

    /// Takes the directory lists that one containers.conf sets.
    pub fn apply(&mut self, containers_conf: &str) -> anyhow::Result<()> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Conf {
            engine: EngineSection,
            network: NetworkSection,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct EngineSection {
            helper_binaries_dir: Option<Vec<PathBuf>>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct NetworkSection {
            cni_plugin_dirs: Option<Vec<PathBuf>>,
        }
        let conf: Conf = toml::from_str(containers_conf).context("not valid TOML")?;
        if let Some(helpers) = conf.engine.helper_binaries_dir {
            self.helpers = helpers;
        }
        if let Some(plugins) = conf.network.cni_plugin_dirs {
            self.cni_plugins = plugins;
        }
        Ok(())
    }

    /// The first `program` in the directories where `backend` looks for it.
    pub fn find(&self, backend: &PodmanBackend) -> Option<PathBuf> {
        let program = backend.dns_program()?;
        let dirs = match backend {
            PodmanBackend::Cni => &self.cni_plugins,
            _ => &self.helpers,
        };
        dirs.iter().map(|dir| dir.join(program)).find(|path| path.is_file())
    }
}

/// Whether containers on a Podman network can find each other by name, and where the DNS
/// program is (or why it is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodmanDns {
    /// The backend in use.
    pub backend: PodmanBackend,
    /// The DNS program's path, or what is missing.
    pub dns: Result<PathBuf, String>,
}

impl PodmanDns {
    /// Combines `podman info` with a search of Podman's directories (used when `podman info`
    /// does not say itself).
    pub fn assess(info: &PodmanNetworkInfo, dirs: &PodmanSearchDirs) -> PodmanDns {
        let found = match &info.dns_path {
            Some(reported) => reported.clone(),
            None => dirs.find(&info.backend),
        };
        let dns = found.ok_or_else(|| match info.backend.dns_program() {
            Some(program) => format!("no {program}"),
            None => "no known DNS for this backend".to_owned(),
        });
        PodmanDns {
            backend: info.backend.clone(),
            dns,
        }
    }
}

/// The one sentence `e2e` prints when the frontend container cannot resolve the backend's
/// Service name, with the command that fixes it.
///
/// `backend` is Podman's network backend (`None` for Docker, or when it could not be read);
/// `dns_enabled` is what the engine says of the network e2e created.
pub fn name_resolution_failure(
    engine: Engine,
    backend: Option<&PodmanBackend>,
    network: &str,
    dns_enabled: Option<bool>,
    host: &str,
) -> String {
    let lead =
        format!("the frontend container cannot resolve the backend's Service name {host:?} on network {network}");
    match (engine, backend, dns_enabled) {
        (Engine::Docker, _, _) => {
            format!("{lead}: Docker's embedded DNS server did not answer for it; fix: {DOCKER_DNS_FIX}")
        }
        (Engine::Podman, Some(PodmanBackend::Cni), _) => format!(
            "{lead}: Podman uses its CNI network backend without the dnsname plugin, so containers cannot find each \
             other by name; fix: {}",
            PodmanBackend::Cni.dns_fix()
        ),
        (Engine::Podman, Some(PodmanBackend::Netavark), Some(false)) => format!(
            "{lead}: Podman created that network with DNS disabled (netavark, `dns_enabled: false`), so containers \
             cannot find each other by name; fix: make sure nothing adds --disable-dns to `podman network create` \
             (a wrapper or alias) and that aardvark-dns is installed: {}",
            PodmanBackend::Netavark.dns_fix()
        ),
        (Engine::Podman, Some(PodmanBackend::Netavark), _) => format!(
            "{lead}: Podman's netavark backend runs no DNS server without aardvark-dns, so containers cannot find \
             each other by name; fix: {}",
            PodmanBackend::Netavark.dns_fix()
        ),
        (Engine::Podman, other, _) => format!(
            "{lead}: Podman's network backend ({}) gives its containers no DNS; fix: {}",
            other.map_or("unknown", PodmanBackend::name),
            other.map_or_else(
                || format!("use Podman's netavark backend: {SWITCH_TO_NETAVARK}"),
                PodmanBackend::dns_fix
            )
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `podman info --format json` (host part) from Podman 4.3.1 on Debian 12, this project's
    /// CI machine, with `network_backend = "netavark"`.
    const PODMAN_4_3_NETAVARK: &str = r#"{"host":{"arch":"amd64","buildahVersion":"1.28.2","cgroupManager":"cgroupfs","networkBackend":"netavark","ociRuntime":{"name":"runc"}},"version":{"APIVersion":"4.3.1","Version":"4.3.1"}}"#;

    /// A later Podman with CNI and the dnsname plugin: `host.networkBackendInfo` as in the `podman
    /// info` example of containers/ansible-podman-collections `plugins/modules/podman_system_info.py`.
    const PODMAN_CNI_WITH_DNSNAME: &str = r#"{"host":{"networkBackend":"cni","networkBackendInfo":{"backend":"cni","dns":{"package":"podman-plugins-3.4.4-1.fc34.x86_64","path":"/usr/libexec/cni/dnsname","version":"CNI dnsname plugin\nversion: 1.3.1\ncommit: unknown"},"package":"containernetworking-plugins-1.0.1-1.fc34.x86_64","path":"/usr/libexec/cni"}}}"#;

    /// A later Podman with netavark and no aardvark-dns: containers/common's netavark
    /// `NetworkInfo()` reports the path it found for aardvark-dns, which is then empty.
    const PODMAN_NETAVARK_WITHOUT_AARDVARK: &str = r#"{"host":{"networkBackend":"netavark","networkBackendInfo":{"backend":"netavark","dns":{"package":"Unknown","path":"","version":""},"package":"netavark-1.7.0-2.fc39.x86_64","path":"/usr/libexec/podman/netavark","version":"netavark 1.7.0"}}}"#;

    #[test]
    fn podman_info_gives_the_backend_and_the_dns_path_when_it_reports_one() {
        let old = parse_podman_info(PODMAN_4_3_NETAVARK).unwrap();
        assert_eq!(old.backend, PodmanBackend::Netavark);
        assert_eq!(old.dns_path, None);
        let cni = parse_podman_info(PODMAN_CNI_WITH_DNSNAME).unwrap();
        assert_eq!(cni.backend, PodmanBackend::Cni);
        assert_eq!(cni.dns_path, Some(Some(PathBuf::from("/usr/libexec/cni/dnsname"))));
        let bare = parse_podman_info(PODMAN_NETAVARK_WITHOUT_AARDVARK).unwrap();
        assert_eq!(bare.dns_path, Some(None));
        assert!(parse_podman_info("not json").is_err());
    }

    #[test]
    fn the_dns_program_is_searched_where_podman_looks_unless_podman_says() {
        let dir = tempfile::tempdir().unwrap();
        let helpers = dir.path().join("helpers");
        std::fs::create_dir_all(&helpers).unwrap();
        let mut dirs = PodmanSearchDirs::default();
        dirs.apply(&format!(
            "[engine]\nhelper_binaries_dir = [{:?}]\n[network]\ncni_plugin_dirs = [{:?}]\n",
            helpers,
            dir.path().join("cni")
        ))
        .unwrap();
        let old = parse_podman_info(PODMAN_4_3_NETAVARK).unwrap();
        assert_eq!(PodmanDns::assess(&old, &dirs).dns, Err("no aardvark-dns".to_owned()));
        std::fs::write(helpers.join("aardvark-dns"), "").unwrap();
        assert_eq!(PodmanDns::assess(&old, &dirs).dns, Ok(helpers.join("aardvark-dns")));
        // What Podman reports wins over the search.
        let bare = parse_podman_info(PODMAN_NETAVARK_WITHOUT_AARDVARK).unwrap();
        assert_eq!(PodmanDns::assess(&bare, &dirs).dns, Err("no aardvark-dns".to_owned()));
    }

    #[test]
    fn containers_conf_without_the_keys_keeps_the_defaults_and_bad_toml_is_an_error() {
        let mut dirs = PodmanSearchDirs::default();
        dirs.apply("[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n")
            .unwrap();
        assert_eq!(dirs, PodmanSearchDirs::default());
        assert!(dirs.apply("[engine\n").is_err());
    }

    #[test]
    fn each_cause_names_its_fix() {
        let cni = name_resolution_failure(
            Engine::Podman,
            Some(&PodmanBackend::Cni),
            "net",
            Some(false),
            "todo-backend",
        );
        assert!(cni.starts_with(
            "the frontend container cannot resolve the backend's Service name \"todo-backend\" on network net: \
             Podman uses its CNI network backend without the dnsname plugin"
        ));
        assert!(
            cni.contains("golang-github-containernetworking-plugin-dnsname"),
            "{cni}"
        );
        let netavark = name_resolution_failure(
            Engine::Podman,
            Some(&PodmanBackend::Netavark),
            "net",
            Some(true),
            "todo-backend",
        );
        assert!(netavark.contains("without aardvark-dns"), "{netavark}");
        assert!(netavark.contains("sudo apt-get install -y aardvark-dns"), "{netavark}");
        let disabled = name_resolution_failure(
            Engine::Podman,
            Some(&PodmanBackend::Netavark),
            "net",
            Some(false),
            "todo-backend",
        );
        assert!(disabled.contains("with DNS disabled"), "{disabled}");
        let docker = name_resolution_failure(Engine::Docker, None, "net", None, "todo-backend");
        assert!(docker.contains("sudo systemctl restart docker"), "{docker}");
        for sentence in [cni, netavark, disabled, docker] {
            assert!(!sentence.contains('\n'), "one line: {sentence}");
        }
    }
}
