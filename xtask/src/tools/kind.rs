//! kind (Kubernetes in Docker), used only when its context is current.

use xshell::Shell;

use crate::tools::version::tool_version;

/// `kind version` (`kind v0.20.0 go1.20.4 linux/amd64`).
pub fn kind_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "kind", &["version"])
}
