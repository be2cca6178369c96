//! A deploy's outcome as people read it.

use super::Outcome;

/// The result for people: the release, revision and context, each image, where to open the app.
pub fn render(outcome: &Outcome) -> String {
    let mut out = format!(
        "deployed release {} revision {} to {} (namespace {})\n",
        outcome.release.as_deref().unwrap_or("?"),
        outcome.revision.map_or_else(|| "?".to_owned(), |r| r.to_string()),
        outcome.context.as_deref().unwrap_or("?"),
        outcome.namespace.as_deref().unwrap_or("?"),
    );
    for image in &outcome.images {
        let ready = image
            .ready
            .as_deref()
            .map(|r| format!("  {r} pods ready"))
            .unwrap_or_default();
        out.push_str(&format!("  {:<9} {}{ready}\n", image.service.name(), image.reference));
    }
    match (&outcome.url, &outcome.url_hint) {
        (Some(url), _) => out.push_str(&format!("  open      {url}\n")),
        (None, Some(hint)) => out.push_str(&format!("  open      {hint}\n")),
        (None, None) => {}
    }
    if let Some(report) = &outcome.smoke {
        out.push_str(&format!("  smoke     all {} steps passed\n", report.steps.len()));
    }
    out
}
