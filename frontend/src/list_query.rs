//! What the task list shows: filters, search, sort and page, as read from the page URL
//! (`/?status=pending&tag=home&page=2`) and as sent to the backend's `GET /tasks`.
//!
//! Reading is lenient (an unknown value falls back to the default, so a hand-edited URL never
//! breaks the page); writing is canonical (defaults are left out). The same canonical query string
//! travels in forms as `return_to`, so after an action the browser lands on the list it came from,
//! and only a list URL can ever be a redirect target.

use serde::Deserialize;

use crate::backend_client::Priority;

/// Tasks per page.
pub const PAGE_SIZE: u32 = 20;
/// Longest search text passed on, in characters (the backend's limit).
const MAX_TEXT_CHARS: usize = 200;
/// Longest tag filter passed on, in characters (the backend's longest tag).
const MAX_TAG_CHARS: usize = 32;

/// The raw query parameters, every one optional text.
#[derive(Debug, Default, Deserialize)]
pub struct RawListQuery {
    /// `all`, `pending` or `completed`.
    pub status: Option<String>,
    /// Search text.
    pub q: Option<String>,
    /// `low`, `medium` or `high`.
    pub priority: Option<String>,
    /// A tag.
    pub tag: Option<String>,
    /// Sort key.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// Page number, from 1.
    pub page: Option<String>,
}

/// Which tasks to show, by completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Every task.
    #[default]
    All,
    /// Not done yet.
    Pending,
    /// Done.
    Completed,
}

impl StatusFilter {
    /// Every option, in menu order.
    pub const ALL: [StatusFilter; 3] = [Self::All, Self::Pending, Self::Completed];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Pending => "pending",
            Self::Completed => "completed",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Self::All => "All",
            Self::Pending => "To do",
            Self::Completed => "Done",
        }
    }
}

/// Sort key of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Creation time.
    #[default]
    Created,
    /// Last change.
    Updated,
    /// Due date (tasks without one last).
    Due,
    /// Priority.
    Priority,
    /// Title.
    Title,
}

impl SortKey {
    /// Every option, in menu order.
    pub const ALL: [SortKey; 5] = [Self::Created, Self::Updated, Self::Due, Self::Priority, Self::Title];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Due => "due",
            Self::Priority => "priority",
            Self::Title => "title",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Created => "Date added",
            Self::Updated => "Last changed",
            Self::Due => "Due date",
            Self::Priority => "Priority",
            Self::Title => "Title",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first (newest first for dates).
    #[default]
    Desc,
}

impl SortOrder {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// The list the user is looking at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    /// Completion filter.
    pub status: StatusFilter,
    /// Search text (trimmed; empty for none).
    pub q: String,
    /// Priority filter.
    pub priority: Option<Priority>,
    /// Tag filter (trimmed; empty for none).
    pub tag: String,
    /// Sort key.
    pub sort: SortKey,
    /// Sort direction.
    pub order: SortOrder,
    /// Page number, from 1.
    pub page: u32,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            status: StatusFilter::All,
            q: String::new(),
            priority: None,
            tag: String::new(),
            sort: SortKey::default(),
            order: SortOrder::default(),
            page: 1,
        }
    }
}

impl ListParams {
    /// Reads the parameters leniently: anything unknown falls back to the default.
    pub fn from_raw(raw: RawListQuery) -> Self {
        // Control characters (a NUL in a hand-edited URL) are dropped: the backend refuses them.
        let text = |value: Option<String>, max: usize| -> String {
            value
                .map(|v| v.trim().chars().filter(|c| !c.is_control()).take(max).collect())
                .unwrap_or_default()
        };
        Self {
            status: match raw.status.as_deref() {
                Some("pending") => StatusFilter::Pending,
                Some("completed") => StatusFilter::Completed,
                _ => StatusFilter::All,
            },
            q: text(raw.q, MAX_TEXT_CHARS),
            priority: raw.priority.as_deref().and_then(Priority::parse),
            tag: text(raw.tag, MAX_TAG_CHARS),
            sort: SortKey::ALL
                .into_iter()
                .find(|key| raw.sort.as_deref() == Some(key.as_str()))
                .unwrap_or_default(),
            order: match raw.order.as_deref() {
                Some("asc") => SortOrder::Asc,
                _ => SortOrder::Desc,
            },
            page: raw
                .page
                .and_then(|p| p.trim().parse::<u32>().ok())
                .filter(|p| (1..=100_000).contains(p))
                .unwrap_or(1),
        }
    }

    /// Reads a query string such as a form's `return_to` (a leading `?` or `/?` is allowed).
    pub fn from_query_str(query: &str) -> Self {
        let query = query.trim_start_matches('/').trim_start_matches('?');
        Self::from_raw(serde_urlencoded::from_str(query).unwrap_or_default())
    }

    /// The canonical query string, defaults left out (empty for the default list).
    pub fn to_query_string(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.status != StatusFilter::All {
            pairs.push(("status", self.status.as_str().to_owned()));
        }
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if let Some(priority) = self.priority {
            pairs.push(("priority", priority.as_str().to_owned()));
        }
        if !self.tag.is_empty() {
            pairs.push(("tag", self.tag.clone()));
        }
        if self.sort != SortKey::default() {
            pairs.push(("sort", self.sort.as_str().to_owned()));
        }
        if self.order != SortOrder::default() {
            pairs.push(("order", self.order.as_str().to_owned()));
        }
        if self.page > 1 {
            pairs.push(("page", self.page.to_string()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// The list's URL: `/` or `/?...`.
    pub fn href(&self) -> String {
        match self.to_query_string() {
            query if query.is_empty() => "/".to_owned(),
            query => format!("/?{query}"),
        }
    }

    /// The same list at another page.
    pub fn with_page(&self, page: u32) -> Self {
        Self { page, ..self.clone() }
    }

    /// Whether any filter or search narrows the list.
    pub fn is_filtered(&self) -> bool {
        self.status != StatusFilter::All || !self.q.is_empty() || self.priority.is_some() || !self.tag.is_empty()
    }

    /// The same sort, without filters or search, page 1.
    pub fn without_filters(&self) -> Self {
        Self {
            sort: self.sort,
            order: self.order,
            ..Self::default()
        }
    }

    /// The query of the backend's `GET /tasks`: only parameters that are set (the API rejects
    /// empty ones), plus the page window.
    pub fn backend_query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if self.status != StatusFilter::All {
            query.push(("status", self.status.as_str().to_owned()));
        }
        if !self.q.is_empty() {
            query.push(("q", self.q.clone()));
        }
        if let Some(priority) = self.priority {
            query.push(("priority", priority.as_str().to_owned()));
        }
        if !self.tag.is_empty() {
            query.push(("tag", self.tag.clone()));
        }
        query.push(("sort", self.sort.as_str().to_owned()));
        query.push(("order", self.order.as_str().to_owned()));
        query.push(("limit", PAGE_SIZE.to_string()));
        query.push(("offset", (u64::from(self.page - 1) * u64::from(PAGE_SIZE)).to_string()));
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_fall_back_to_defaults() {
        let params = ListParams::from_query_str("status=weird&priority=urgent&sort=nope&order=sideways&page=-3&x=1");
        assert_eq!(params, ListParams::default());
        assert_eq!(params.href(), "/");
    }

    #[test]
    fn search_and_tag_are_cut_to_what_the_backend_accepts() {
        let long_tag = "t".repeat(40);
        let params = ListParams::from_query_str(&format!("q=a%00b%01c&tag={long_tag}"));
        assert_eq!(params.q, "abc");
        assert_eq!(params.tag, "t".repeat(32));
    }

    #[test]
    fn canonical_round_trip() {
        let params =
            ListParams::from_query_str("?page=2&tag=%20home%20&q=milk+%26+eggs&priority=high&status=pending&order=asc");
        assert_eq!(params.tag, "home");
        assert_eq!(params.q, "milk & eggs");
        let query = params.to_query_string();
        assert_eq!(
            query,
            "status=pending&q=milk+%26+eggs&priority=high&tag=home&order=asc&page=2"
        );
        assert_eq!(ListParams::from_query_str(&query), params);
    }

    #[test]
    fn backend_query_sends_only_what_is_set() {
        let query = ListParams::default().with_page(3).backend_query();
        let keys: Vec<_> = query.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["sort", "order", "limit", "offset"]);
        assert_eq!(query[3].1, (2 * PAGE_SIZE).to_string());
    }

    #[test]
    fn redirect_targets_are_always_list_urls() {
        for hostile in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil",
            "page=1\r\nSet-Cookie: x",
        ] {
            let href = ListParams::from_query_str(hostile).href();
            assert!(href == "/" || href.starts_with("/?"), "{hostile} -> {href}");
            assert!(!href.contains(['\r', '\n']));
        }
    }
}
