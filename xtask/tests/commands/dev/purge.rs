//! `cargo xtask dev --purge`: on Ctrl-C the release goes, and its data and Secret with it,
//! without asking (the flag is the answer), in uninstall's order.

use super::*;
use crate::support::cluster::{assert_purged, purge_deletes};

#[test]
fn purge_uninstalls_and_deletes_the_data_and_the_secret_on_ctrl_c() {
    let (standins, project) = (StandIns::new(), Project::new());
    let programs = purge_deletes(uninstallable(&standins, &project));
    let session = Session::start(&standins, &project, &programs, &["--purge", "--no-logs"]);
    // Nothing is removed while the loop runs.
    assert!(calls(&standins, "helm uninstall").is_empty());
    let (code, stderr) = session.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert_purged(&standins.invocations());
    assert!(stderr.contains("release todo purged"), "{stderr}");
}
