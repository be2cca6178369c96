//! k3d (k3s in Docker), used only when its context is current.

use xshell::Shell;

use crate::tools::version::tool_version;

/// `k3d version` (`k3d version v5.6.0` then `k3s version v1.27.4-k3s1 (default)`).
pub fn k3d_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "k3d", &["version"])
}
