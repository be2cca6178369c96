//! A release's revisions as `helm history -o json` lists them, and the state that follows from
//! them: not installed, settled at a revision, or stuck `pending-*` by an interrupted run.

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One revision in `helm history -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Revision {
    /// The revision number.
    pub revision: u32,
    /// When it was made.
    #[serde(default)]
    pub updated: String,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, ...
    pub status: String,
    /// `todo-0.1.0`.
    #[serde(default)]
    pub chart: String,
    /// The chart's appVersion.
    #[serde(default)]
    pub app_version: String,
    /// Helm's note (`Upgrade complete`, `Rollback to 2`, an error).
    #[serde(default)]
    pub description: String,
}

/// Parses `helm history -o json` (a list of revisions, oldest first).
pub fn parse_history(json: &str) -> anyhow::Result<Vec<Revision>> {
    let mut revisions: Vec<Revision> = serde_json::from_str(json.trim()).context("reading `helm history -o json`")?;
    revisions.sort_by_key(|r| r.revision);
    Ok(revisions)
}

/// Where a release stands, from its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseState {
    /// Never installed (or uninstalled).
    Missing,
    /// Its latest revision finished (deployed, failed, superseded...).
    Settled(Revision),
    /// An install, upgrade or rollback was interrupted midway: Helm refuses another until it is
    /// resolved.
    Stuck {
        /// The pending revision.
        pending: Revision,
        /// The newest revision that was deployed before it, to roll back to (none for a first
        /// install, which can only be removed).
        last_good: Option<u32>,
    },
}

impl ReleaseState {
    /// The state its history shows.
    pub fn from_history(history: Option<&[Revision]>) -> ReleaseState {
        let Some(latest) = history.and_then(|h| h.last()) else {
            return ReleaseState::Missing;
        };
        if !latest.status.starts_with("pending-") {
            return ReleaseState::Settled(latest.clone());
        }
        let last_good = history
            .into_iter()
            .flatten()
            .filter(|r| r.revision < latest.revision && matches!(r.status.as_str(), "deployed" | "superseded"))
            .map(|r| r.revision)
            .max();
        ReleaseState::Stuck {
            pending: latest.clone(),
            last_good,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real shape of `helm history -o json` (Helm 3.17; Helm 4 prints the same fields).
    const HISTORY: &str = r#"[{"revision":1,"updated":"2025-03-10T10:00:00.123456789Z","status":"superseded","chart":"todo-0.1.0","app_version":"0.1.0","description":"Install complete"},{"revision":2,"updated":"2025-03-10T11:00:00.123456789Z","status":"deployed","chart":"todo-0.1.0","app_version":"0.1.0","description":"Upgrade complete"},{"revision":3,"updated":"2025-03-10T12:00:00.123456789Z","status":"pending-upgrade","chart":"todo-0.1.0","app_version":"0.1.0","description":"Preparing upgrade"}]"#;

    #[test]
    fn an_interrupted_upgrade_is_stuck_with_the_revision_to_return_to() {
        let history = parse_history(HISTORY).unwrap();
        match ReleaseState::from_history(Some(&history)) {
            ReleaseState::Stuck { pending, last_good } => {
                assert_eq!((pending.revision, pending.status.as_str()), (3, "pending-upgrade"));
                assert_eq!(last_good, Some(2));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ReleaseState::from_history(Some(&history[..2])),
            ReleaseState::Settled(history[1].clone())
        );
        assert_eq!(ReleaseState::from_history(None), ReleaseState::Missing);
    }

    #[test]
    fn an_interrupted_first_install_has_nothing_to_return_to() {
        let history = parse_history(
            r#"[{"revision":1,"updated":"2025-03-10T10:00:00Z","status":"pending-install","chart":"todo-0.1.0","app_version":"0.1.0","description":"Initial install underway"}]"#,
        )
        .unwrap();
        assert!(matches!(
            ReleaseState::from_history(Some(&history)),
            ReleaseState::Stuck { last_good: None, .. }
        ));
    }
}
