//! Templates (askama, in `frontend/templates/`): one struct per page and one per swappable
//! fragment, plus the view models they show. A page includes its fragments' templates, so the
//! first render and an htmx in-place update produce the same markup. askama escapes every value.

use askama::Template;
use axum::{
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use time::{Date, macros::format_description};

pub mod chat;

use crate::{
    assets,
    backend_client::{Priority, Task, User},
    list_query::{ListParams, PAGE_SIZE, SortKey, SortOrder, StatusFilter},
};

/// Renders a template into an HTML response; a rendering failure is logged and becomes a
/// plain 500 (it would be a bug in a template).
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering a template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "internal server error",
            )
                .into_response()
        }
    }
}

/// Implements `IntoResponse` for templates, all through [`render`].
macro_rules! html_response {
    ($($ty:ty),* $(,)?) => {$(
        impl IntoResponse for $ty {
            fn into_response(self) -> Response {
                render(&self)
            }
        }
    )*};
}

/// What every page's frame (header, scripts) needs.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// This browser's CSRF token (for the logout form and htmx's `x-csrf-token` header).
    pub csrf_token: String,
    /// Whether a session cookie is present (shows the logout button).
    pub signed_in: bool,
    /// Who is signed in, when known.
    pub user: Option<String>,
    /// The stylesheet URL.
    pub stylesheet: String,
    /// The htmx URL.
    pub htmx: String,
    /// The icon URL.
    pub icon: String,
}

impl Layout {
    /// A frame without a session (login, register, error pages).
    pub fn guest(csrf_token: &str) -> Self {
        Self {
            csrf_token: csrf_token.to_owned(),
            signed_in: false,
            user: None,
            stylesheet: assets::STYLESHEET.url(),
            htmx: assets::HTMX.url(),
            icon: assets::ICON.url(),
        }
    }

    /// A frame for a signed-in user (`user` when the page fetched it).
    pub fn member(csrf_token: &str, user: Option<&User>) -> Self {
        Self {
            signed_in: true,
            user: user.map(|u| {
                u.name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| u.email.clone())
            }),
            ..Self::guest(csrf_token)
        }
    }
}

/// An error message on a form, attached to one field or to the whole form (`field` empty).
#[derive(Debug, Clone, Default)]
pub struct FormError {
    /// The field's `name`, or empty.
    pub field: &'static str,
    /// What to tell the user.
    pub message: String,
}

impl FormError {
    /// Attaches a backend validation message to the field it names (its first word), if that is
    /// one of `fields`; otherwise to the whole form.
    pub fn from_message(message: &str, fields: &[&'static str]) -> Self {
        let first = message
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        let field = match first {
            "each" | "a" if message.contains("tag") => "tags",
            other => fields.iter().copied().find(|f| *f == other).unwrap_or(""),
        };
        let field = if fields.contains(&field) { field } else { "" };
        let mut text = message.replacen("due_date", "due date", 1);
        if let Some(first) = text.get(..1) {
            text = first.to_uppercase() + &text[1..];
        }
        if !text.ends_with('.') {
            text.push('.');
        }
        Self { field, message: text }
    }

    /// An error about the whole form.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            field: "",
            message: message.into(),
        }
    }
}

/// The error message for `field` (empty `field`: the form-wide one), for templates.
fn error_for<'a>(error: &'a Option<FormError>, field: &str) -> Option<&'a str> {
    error.as_ref().filter(|e| e.field == field).map(|e| e.message.as_str())
}

/// `GET /login`.
#[derive(Debug, Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    /// Page frame.
    pub layout: Layout,
    /// The email typed, kept after an error (never the password).
    pub email: String,
    /// What went wrong.
    pub error: Option<FormError>,
}

impl LoginPage {
    /// The error for one field, or the form-wide one with `""`.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.error, field)
    }
}

/// `GET /register`.
#[derive(Debug, Template)]
#[template(path = "auth/register.html")]
pub struct RegisterPage {
    /// Page frame.
    pub layout: Layout,
    /// The email typed, kept after an error.
    pub email: String,
    /// The name typed, kept after an error.
    pub name: String,
    /// What went wrong.
    pub error: Option<FormError>,
}

impl RegisterPage {
    /// The error for one field, or the form-wide one with `""`.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.error, field)
    }
}

/// The values of a task form (add or edit), as typed.
#[derive(Debug, Clone, Default)]
pub struct TaskFormValues {
    /// Title.
    pub title: String,
    /// Notes.
    pub description: String,
    /// `low`, `medium` or `high`.
    pub priority: String,
    /// `YYYY-MM-DD` or empty.
    pub due_date: String,
    /// Comma-separated tags.
    pub tags: String,
    /// What went wrong.
    pub error: Option<FormError>,
    /// Put the cursor in the title field when swapped in (after adding, to add the next one).
    pub autofocus: bool,
}

impl TaskFormValues {
    /// An empty form (medium priority).
    pub fn blank() -> Self {
        Self {
            priority: Priority::Medium.as_str().to_owned(),
            ..Self::default()
        }
    }

    /// A form filled from a stored task.
    pub fn from_task(task: &Task) -> Self {
        Self {
            title: task.title.clone(),
            description: task.description.clone().unwrap_or_default(),
            priority: task.priority.as_str().to_owned(),
            due_date: task.due_date.clone().unwrap_or_default(),
            tags: task.tags.join(", "),
            error: None,
            autofocus: false,
        }
    }

    /// The error for one field, or the form-wide one with `""`.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.error, field)
    }

    /// Whether anything beyond the title is filled in or wrong (the add form then shows its
    /// optional fields open).
    pub fn has_details(&self) -> bool {
        !self.description.trim().is_empty()
            || !self.due_date.is_empty()
            || !self.tags.trim().is_empty()
            || self.priority != Priority::Medium.as_str()
            || self
                .error
                .as_ref()
                .is_some_and(|e| e.field != "title" && !e.field.is_empty())
    }

    /// The priority options, with whether each is selected.
    pub fn priority_options(&self) -> Vec<SelectOption> {
        Priority::ALL
            .into_iter()
            .map(|p| SelectOption::new(p.as_str(), p.label(), self.priority == p.as_str()))
            .collect()
    }
}

/// One `<option>`.
#[derive(Debug, Clone)]
pub struct SelectOption {
    /// The submitted value.
    pub value: &'static str,
    /// The visible label.
    pub label: &'static str,
    /// Whether it is the current choice.
    pub selected: bool,
}

impl SelectOption {
    fn new(value: &'static str, label: &'static str, selected: bool) -> Self {
        Self { value, label, selected }
    }
}

/// How a due date relates to today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueState {
    /// No due date, or the task is done.
    None,
    /// Past due and not done.
    Overdue,
    /// Due today.
    Today,
    /// Due later.
    Later,
}

/// A task as the list shows it.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// Numeric id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Notes.
    pub description: Option<String>,
    /// Whether it is done.
    pub completed: bool,
    /// Priority.
    pub priority: Priority,
    /// The due date as people read it (`Due 3 Mar 2030`, `Due today`, `Overdue since 1 Mar`).
    pub due_label: Option<String>,
    /// The due date as `YYYY-MM-DD` (for `<time datetime>`).
    pub due_date: Option<String>,
    /// How the due date relates to today.
    pub due_state: DueState,
    /// Tags, each with the link that filters by it.
    pub tags: Vec<TagLink>,
}

/// A tag and the list URL that shows only tasks with it.
#[derive(Debug, Clone)]
pub struct TagLink {
    /// The tag.
    pub name: String,
    /// `/?tag=...`.
    pub href: String,
}

impl TaskView {
    /// Prepares a task for display, judging "overdue" against `today`.
    pub fn new(task: Task, today: Date) -> Self {
        let iso = format_description!("[year]-[month]-[day]");
        let due = task.due_date.as_deref().and_then(|d| Date::parse(d, &iso).ok());
        let (due_state, due_label) = match due {
            None => (DueState::None, task.due_date.clone().map(|d| format!("Due {d}"))),
            Some(date) => {
                let same_year = date.year() == today.year();
                let shown = if same_year {
                    date.format(format_description!(
                        "[weekday repr:short] [day padding:none] [month repr:short]"
                    ))
                } else {
                    date.format(format_description!("[day padding:none] [month repr:short] [year]"))
                }
                .unwrap_or_default();
                let days = (date - today).whole_days();
                let state = match days {
                    _ if task.completed => DueState::None,
                    d if d < 0 => DueState::Overdue,
                    0 => DueState::Today,
                    _ => DueState::Later,
                };
                let label = match days {
                    0 => "Due today".to_owned(),
                    1 => "Due tomorrow".to_owned(),
                    d if d < 0 && !task.completed => format!("Overdue · was due {shown}"),
                    _ => format!("Due {shown}"),
                };
                (state, Some(label))
            }
        };
        Self {
            id: task.id,
            title: task.title,
            description: task.description,
            completed: task.completed,
            priority: task.priority,
            due_label,
            due_date: task.due_date,
            due_state,
            tags: task
                .tags
                .into_iter()
                .map(|name| TagLink {
                    href: ListParams {
                        tag: name.clone(),
                        ..ListParams::default()
                    }
                    .href(),
                    name,
                })
                .collect(),
        }
    }

    /// Whether the task is past due and not done.
    pub fn is_overdue(&self) -> bool {
        self.due_state == DueState::Overdue
    }

    /// Whether the task is due today and not done.
    pub fn is_due_today(&self) -> bool {
        self.due_state == DueState::Today
    }

    /// `true`/`false` for `data-completed`.
    pub fn completed_attr(&self) -> &'static str {
        if self.completed { "true" } else { "false" }
    }

    /// The list item's classes.
    pub fn classes(&self) -> String {
        let mut classes = format!("task priority-{}", self.priority.as_str());
        if self.completed {
            classes.push_str(" is-done");
        }
        match self.due_state {
            DueState::Overdue => classes.push_str(" is-overdue"),
            DueState::Today => classes.push_str(" is-due-today"),
            DueState::None | DueState::Later => {}
        }
        classes
    }
}

/// Where list actions come back to: the CSRF token and the list's canonical query.
#[derive(Debug, Clone)]
pub struct ListContext {
    /// The CSRF token for the forms.
    pub csrf_token: String,
    /// The list's canonical query string (see [`ListParams::to_query_string`]).
    pub return_to: String,
}

/// A link to a page of the list.
#[derive(Debug, Clone)]
pub struct PageLink {
    /// Page number.
    pub number: u32,
    /// The URL.
    pub href: String,
    /// Whether it is the page shown.
    pub current: bool,
}

/// Paging controls, present when the tasks do not fit on one page.
#[derive(Debug, Clone)]
pub struct Pagination {
    /// The page shown.
    pub page: u32,
    /// How many pages.
    pub pages: u32,
    /// The previous page, if any.
    pub prev_href: Option<String>,
    /// The next page, if any.
    pub next_href: Option<String>,
    /// Links to the pages near the current one (with the first and last).
    pub links: Vec<PageLink>,
}

impl Pagination {
    /// Paging for `total` tasks, or `None` when one page holds them all.
    pub fn new(params: &ListParams, total: u64) -> Option<Self> {
        let pages = u32::try_from(total.div_ceil(u64::from(PAGE_SIZE))).unwrap_or(u32::MAX);
        if pages <= 1 {
            return None;
        }
        let page = params.page.min(pages);
        let href = |n: u32| params.with_page(n).href();
        let links = (1..=pages)
            .filter(|n| *n == 1 || *n == pages || n.abs_diff(page) <= 2)
            .map(|n| PageLink {
                number: n,
                href: href(n),
                current: n == page,
            })
            .collect();
        Some(Self {
            page,
            pages,
            prev_href: (page > 1).then(|| href(page - 1)),
            next_href: (page < pages).then(|| href(page + 1)),
            links,
        })
    }
}

/// The swappable part of the task page: the add form, the list and its paging.
#[derive(Debug, Clone)]
pub struct Board {
    /// The add-a-task form.
    pub form: TaskFormValues,
    /// The tasks on this page.
    pub tasks: Vec<TaskView>,
    /// How many tasks match, over all pages.
    pub total: u64,
    /// Whether filters or search narrow the list.
    pub filtered: bool,
    /// The list without filters.
    pub clear_filters_href: String,
    /// Paging, when needed.
    pub pagination: Option<Pagination>,
}

impl Board {
    /// "1 task", "12 tasks".
    pub fn count_label(&self) -> String {
        match self.total {
            1 => "1 task".to_owned(),
            n => format!("{n} tasks"),
        }
    }
}

/// The filter, search and sort form's current values.
#[derive(Debug, Clone)]
pub struct FilterView {
    /// Completion filter options.
    pub statuses: Vec<SelectOption>,
    /// Priority filter options (plus "any").
    pub priorities: Vec<SelectOption>,
    /// Sort key options.
    pub sorts: Vec<SelectOption>,
    /// Whether the order is ascending.
    pub ascending: bool,
    /// Search text.
    pub q: String,
    /// Tag filter.
    pub tag: String,
    /// Whether any filter is active.
    pub filtered: bool,
    /// The list without filters.
    pub clear_href: String,
}

impl FilterView {
    /// The form for these parameters.
    pub fn new(params: &ListParams) -> Self {
        let mut priorities = vec![SelectOption::new("", "Any priority", params.priority.is_none())];
        priorities.extend(
            Priority::ALL
                .into_iter()
                .map(|p| SelectOption::new(p.as_str(), p.label(), params.priority == Some(p))),
        );
        Self {
            statuses: StatusFilter::ALL
                .into_iter()
                .map(|s| SelectOption::new(s.as_str(), s.label(), params.status == s))
                .collect(),
            priorities,
            sorts: SortKey::ALL
                .into_iter()
                .map(|s| SelectOption::new(s.as_str(), s.label(), params.sort == s))
                .collect(),
            ascending: params.order == SortOrder::Asc,
            q: params.q.clone(),
            tag: params.tag.clone(),
            filtered: params.is_filtered(),
            clear_href: params.without_filters().href(),
        }
    }
}

/// `GET /`: the task list page.
#[derive(Debug, Template)]
#[template(path = "tasks/index.html")]
pub struct TasksPage {
    /// Page frame.
    pub layout: Layout,
    /// The filter form.
    pub filters: FilterView,
    /// The swappable board.
    pub board: Board,
    /// Where actions come back to.
    pub list: ListContext,
}

/// The board alone, for htmx to swap in place (`#board`).
#[derive(Debug, Template)]
#[template(path = "tasks/board_fragment.html")]
pub struct BoardFragment {
    /// The board.
    pub board: Board,
    /// Where actions come back to.
    pub list: ListContext,
}

/// One task item alone, for htmx to swap in place (`#task-{id}`).
#[derive(Debug, Template)]
#[template(path = "tasks/item_fragment.html")]
pub struct TaskItemFragment {
    /// The task.
    pub task: TaskView,
    /// Where actions come back to.
    pub list: ListContext,
}

/// `GET /tasks/{id}/edit`.
#[derive(Debug, Template)]
#[template(path = "tasks/edit.html")]
pub struct EditTaskPage {
    /// Page frame.
    pub layout: Layout,
    /// The task's id.
    pub task_id: i64,
    /// The form's values.
    pub form: TaskFormValues,
    /// Where to go back to.
    pub list: ListContext,
    /// The list's URL (the cancel link).
    pub back_href: String,
}

/// `GET /tasks/{id}/delete`: the confirmation page for browsers without JavaScript.
#[derive(Debug, Template)]
#[template(path = "tasks/delete.html")]
pub struct DeleteTaskPage {
    /// Page frame.
    pub layout: Layout,
    /// The task to delete.
    pub task: TaskView,
    /// Where to go back to.
    pub list: ListContext,
    /// The list's URL (the cancel link).
    pub back_href: String,
}

/// Every error page (404, 403, 503, 500, ...).
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Page frame (never signed-in: an error page has no session data).
    pub layout: Layout,
    /// HTTP status code.
    pub status: u16,
    /// Headline.
    pub title: &'static str,
    /// Explanation.
    pub message: String,
    /// Whether to offer "try again".
    pub retry: bool,
}

impl ErrorPage {
    /// An error page; the status is set on the response by the caller.
    pub fn new(status: StatusCode, title: &'static str, message: &str, retry: bool) -> Self {
        Self {
            layout: Layout::guest(""),
            status: status.as_u16(),
            title,
            message: message.to_owned(),
            retry,
        }
    }
}

html_response!(
    LoginPage,
    RegisterPage,
    TasksPage,
    BoardFragment,
    TaskItemFragment,
    EditTaskPage,
    DeleteTaskPage,
    ErrorPage,
);

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    fn task(due: Option<&str>, completed: bool) -> Task {
        Task {
            id: 7,
            title: "Water <the> plants".to_owned(),
            description: None,
            completed,
            priority: Priority::High,
            due_date: due.map(str::to_owned),
            tags: vec!["home".to_owned()],
            created_at: "2030-01-01T00:00:00Z".to_owned(),
            updated_at: "2030-01-01T00:00:00Z".to_owned(),
        }
    }

    #[test]
    fn due_dates_are_judged_against_today() {
        let today = date!(2030 - 03 - 10);
        let overdue = TaskView::new(task(Some("2030-03-09"), false), today);
        assert!(overdue.is_overdue());
        assert!(overdue.classes().contains("is-overdue"));
        assert_eq!(overdue.due_label.as_deref(), Some("Overdue · was due Sat 9 Mar"));
        let done = TaskView::new(task(Some("2030-03-09"), true), today);
        assert!(!done.is_overdue(), "a done task is never overdue");
        assert!(TaskView::new(task(Some("2030-03-10"), false), today).is_due_today());
        let later = TaskView::new(task(Some("2031-01-02"), false), today);
        assert_eq!(later.due_label.as_deref(), Some("Due 2 Jan 2031"));
        assert_eq!(TaskView::new(task(None, false), today).due_state, DueState::None);
    }

    #[test]
    fn item_markup_keeps_the_contract_and_escapes() {
        let fragment = TaskItemFragment {
            task: TaskView::new(task(None, false), date!(2030 - 03 - 10)),
            list: ListContext {
                csrf_token: "tok".to_owned(),
                return_to: String::new(),
            },
        };
        let html = fragment.render().unwrap();
        assert!(
            html.contains(r#"<li id="task-7" class="task priority-high" data-task-id="7" data-completed="false""#),
            "{html}"
        );
        assert!(html.contains("Water &#60;the&#62; plants"), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="csrf_token" value="tok">"#));
        assert!(!html.contains("style="), "inline styles are blocked by the CSP");
    }

    #[test]
    fn backend_messages_land_on_their_field() {
        let fields = ["title", "description", "due_date", "tags"];
        let e = FormError::from_message("title must be 1 to 200 characters long", &fields);
        assert_eq!(
            (e.field, e.message.as_str()),
            ("title", "Title must be 1 to 200 characters long.")
        );
        assert_eq!(
            FormError::from_message("each tag must be 1 to 32 characters long", &fields).field,
            "tags"
        );
        assert_eq!(
            FormError::from_message("a task can have at most 10 tags", &fields).field,
            "tags"
        );
        assert_eq!(
            FormError::from_message("due_date must be a date", &fields).field,
            "due_date"
        );
        assert_eq!(FormError::from_message("something else", &fields).field, "");
    }

    #[test]
    fn pagination_appears_only_past_one_page() {
        let params = ListParams::default();
        assert!(Pagination::new(&params, u64::from(PAGE_SIZE)).is_none());
        let paging = Pagination::new(&params.with_page(2), u64::from(PAGE_SIZE) * 5).unwrap();
        assert_eq!(paging.pages, 5);
        assert_eq!(paging.prev_href.as_deref(), Some("/"));
        assert_eq!(paging.next_href.as_deref(), Some("/?page=3"));
        let numbers: Vec<u32> = paging.links.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
    }
}
