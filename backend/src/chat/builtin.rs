//! The built-in engine: a deterministic parser for everyday English commands, no key and no
//! network. [`plan`] turns a message into one tool call (or help, or "not understood") against an
//! injected "today"; [`respond`] runs it and words the outcome.
//!
//! Understood: add (with due words, priority words and #tags), list (all / pending / done /
//! overdue / due today / tomorrow / this week / next week, by #tag, priority or search text),
//! complete / reopen / delete / rename / move / prioritise a task by id (`3`, `#3`, `task 3`) or by
//! a unique title match, and help.

use serde_json::{Map, Value, json};
use time::{Date, Duration};

use super::{
    Reply,
    dates::{end_of_week, on_or_after, parse_date},
    tools::{Action, ToolCall, Toolbox},
};
use crate::error::ApiResult;

/// What a message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Run this tool call.
    Call(ToolCall),
    /// Show what can be said.
    Help,
    /// Nothing recognisable.
    NotUnderstood,
}

/// Examples shown with help and when a message is not understood.
pub const EXAMPLES: &str = "“add buy milk tomorrow, high priority #shopping”, “what's overdue?”, \
     “show tasks due this week”, “complete 3”, “complete buy milk”, “reopen 3”, \
     “rename 3 to buy oat milk”, “move 3 to friday”, “delete buy milk”";

/// One word of the message: as typed (for titles) and as compared (lower case, no punctuation
/// around it, `#` kept).
#[derive(Debug, Clone)]
struct Word {
    raw: String,
    key: String,
}

fn words(text: &str) -> Vec<Word> {
    text.split_whitespace()
        .map(|raw| {
            let key = raw
                .trim_matches(|c: char| !(c.is_alphanumeric() || c == '#' || c == '-' || c == '\''))
                .trim_matches('\'')
                .to_lowercase()
                .replace('’', "'");
            Word {
                raw: raw.to_owned(),
                key,
            }
        })
        .filter(|w| !w.raw.is_empty())
        .collect()
}

fn keys(words: &[Word]) -> Vec<&str> {
    words.iter().map(|w| w.key.as_str()).collect()
}

/// The words as typed, joined, without quotes or punctuation around the whole.
fn text_of(words: &[Word]) -> String {
    let joined = words.iter().map(|w| w.raw.as_str()).collect::<Vec<_>>().join(" ");
    joined
        .trim_matches(|c: char| c.is_whitespace() || ",;:.!?-–—\"“”'‘’".contains(c))
        .to_owned()
}

/// Drops `prefix` (a phrase of keys) from the start of `words`, if it is there.
fn strip_prefix<'a>(words: &'a [Word], prefix: &str) -> Option<&'a [Word]> {
    let phrase: Vec<&str> = prefix.split(' ').collect();
    let head = words.get(..phrase.len())?;
    head.iter()
        .zip(&phrase)
        .all(|(w, p)| w.key == *p)
        .then(|| &words[phrase.len()..])
}

/// The first of `prefixes` that starts `words`, and the words after it.
fn after_any<'a>(words: &'a [Word], prefixes: &[&str]) -> Option<&'a [Word]> {
    prefixes.iter().find_map(|p| strip_prefix(words, p))
}

/// Courtesy that carries no meaning: "please", "can you", "hey", trailing "thanks".
fn without_courtesy(mut words: &[Word]) -> &[Word] {
    const LEADING: [&str; 12] = [
        "please", "pls", "hey", "hi", "hello", "ok", "okay", "so", "could", "can", "would", "you",
    ];
    while let Some(first) = words.first() {
        if LEADING.contains(&first.key.as_str()) {
            words = &words[1..];
        } else {
            break;
        }
    }
    while let Some(last) = words.last() {
        if ["please", "thanks", "thx"].contains(&last.key.as_str()) {
            words = &words[..words.len() - 1];
        } else if words.len() >= 2 && last.key == "you" && words[words.len() - 2].key == "thank" {
            words = &words[..words.len() - 2];
        } else {
            break;
        }
    }
    words
}

/// Reads the words of a message as one kind of command, or declines with `None`.
type Planner = fn(&[Word], Date) -> Option<ToolCall>;

/// Reads a message against `today`.
pub fn plan(message: &str, today: Date) -> Plan {
    let all = words(message);
    let words = without_courtesy(&all);
    let joined = keys(words).join(" ");
    if words.is_empty() {
        return Plan::NotUnderstood;
    }
    const HELP: [&str; 9] = [
        "help",
        "help me",
        "what can you do",
        "what can i say",
        "commands",
        "examples",
        "how does this work",
        "?",
        "",
    ];
    if HELP.contains(&joined.as_str()) {
        return Plan::Help;
    }
    let planners: [Planner; 7] = [rename, reopen, complete, delete, reschedule, add, list];
    planners
        .iter()
        .find_map(|planner| planner(words, today))
        .or_else(|| done_suffix(words))
        .map_or(Plan::NotUnderstood, Plan::Call)
}

/// How a message names a task: by id or by title text.
fn target(words: &[Word]) -> Option<Map<String, Value>> {
    let words = strip_prefix(words, "the").unwrap_or(words);
    let words = after_any(words, &["task number", "task no", "task", "number", "no", "item"])
        .filter(|rest| !rest.is_empty())
        .unwrap_or(words);
    let mut target = Map::new();
    if let [one] = words
        && let Ok(id) = one.key.trim_start_matches('#').parse::<i64>()
        && id > 0
    {
        target.insert("id".to_owned(), json!(id));
        return Some(target);
    }
    // "the milk task" names "milk".
    let words = match words.split_last() {
        Some((last, rest)) if last.key == "task" && !rest.is_empty() => rest,
        _ => words,
    };
    let title = text_of(words);
    // "done tasks", "delete everything": not a task's name.
    if title.is_empty()
        || ["tasks", "task", "items", "list", "all", "everything"].contains(&title.to_lowercase().as_str())
    {
        return None;
    }
    target.insert("title".to_owned(), json!(title));
    Some(target)
}

fn call(tool: &str, arguments: Map<String, Value>) -> ToolCall {
    ToolCall::new(tool, Value::Object(arguments))
}

/// Splits `words` at the first word whose key is one of `separators`.
fn split_at_word<'a>(words: &'a [Word], separators: &[&str]) -> Option<(&'a [Word], &'a [Word])> {
    let at = words.iter().position(|w| separators.contains(&w.key.as_str()))?;
    Some((&words[..at], &words[at + 1..]))
}

/// "rename 3 to buy oat milk", "change the title of buy milk to buy oat milk".
fn rename(words: &[Word], _today: Date) -> Option<ToolCall> {
    let rest = after_any(
        words,
        &[
            "rename",
            "retitle",
            "change the title of",
            "change title of",
            "change the name of",
        ],
    )?;
    let (old, new) = split_at_word(rest, &["to", "as", "into"])?;
    let mut arguments = target(old)?;
    let new_title = text_of(new);
    if new_title.is_empty() {
        return None;
    }
    arguments.insert("new_title".to_owned(), json!(new_title));
    Some(call("update_task", arguments))
}

/// "mark 3 as done", "complete buy milk", "i finished buy milk", "check off 3".
fn complete(words: &[Word], _today: Date) -> Option<ToolCall> {
    if let Some(rest) = strip_prefix(words, "mark") {
        let (task, state) = mark_state(rest)?;
        return state.then(|| target(task)).flatten().map(|t| call("complete_task", t));
    }
    let rest = after_any(
        words,
        &[
            "complete",
            "finish",
            "finished",
            "done with",
            "done",
            "check off",
            "tick off",
            "cross off",
            "i did",
            "i finished",
            "i completed",
            "i've done",
            "ive done",
            "i have done",
            "i've finished",
        ],
    )?;
    target(rest).map(|t| call("complete_task", t))
}

/// After "mark": the task and whether it should be done (`true`) or not done (`false`).
fn mark_state(words: &[Word]) -> Option<(&[Word], bool)> {
    const NOT_DONE: [&str; 8] = [
        "as not done",
        "not done",
        "as undone",
        "undone",
        "as pending",
        "as open",
        "as incomplete",
        "as todo",
    ];
    const DONE: [&str; 8] = [
        "as done",
        "done",
        "as complete",
        "complete",
        "as completed",
        "completed",
        "as finished",
        "finished",
    ];
    for (phrases, state) in [(&NOT_DONE, false), (&DONE, true)] {
        for phrase in phrases.iter() {
            let len = phrase.split(' ').count();
            if words.len() > len && strip_prefix(&words[words.len() - len..], phrase).is_some() {
                return Some((&words[..words.len() - len], state));
            }
        }
    }
    None
}

/// "reopen 3", "undo buy milk", "mark 3 as not done".
fn reopen(words: &[Word], _today: Date) -> Option<ToolCall> {
    let task = if let Some(rest) = strip_prefix(words, "mark") {
        let (task, state) = mark_state(rest)?;
        if state {
            return None;
        }
        task
    } else {
        after_any(
            words,
            &["reopen", "re-open", "undo", "uncomplete", "unmark", "unfinish"],
        )?
    };
    let mut arguments = target(task)?;
    arguments.insert("completed".to_owned(), json!(false));
    Some(call("update_task", arguments))
}

/// "delete 3", "remove buy milk", "get rid of the milk task".
fn delete(words: &[Word], _today: Date) -> Option<ToolCall> {
    let rest = after_any(
        words,
        &[
            "delete",
            "remove",
            "drop",
            "trash",
            "erase",
            "discard",
            "get rid of",
            "forget about",
            "forget",
            "cancel",
        ],
    )?;
    target(rest).map(|t| call("delete_task", t))
}

/// "move 3 to friday", "postpone buy milk until next monday", "make 3 high priority".
fn reschedule(words: &[Word], today: Date) -> Option<ToolCall> {
    if let Some(rest) = after_any(words, &["move", "postpone", "reschedule", "push", "defer"]) {
        let (task, when) = split_at_word(rest, &["to", "until", "till", "for"])?;
        let keys = keys(when);
        let (date, used) = parse_date(&keys, today)?;
        if used != keys.len() {
            return None;
        }
        let mut arguments = target(task)?;
        arguments.insert("due_date".to_owned(), json!(date.to_string()));
        return Some(call("update_task", arguments));
    }
    let rest = after_any(words, &["make", "set", "mark"])?;
    let (task, priority) = match rest.split_last_chunk::<2>() {
        Some((task, [level, word])) if word.key == "priority" => (task, priority_level(&level.key)?),
        _ => match rest.split_last() {
            Some((last, task)) if ["urgent", "important"].contains(&last.key.as_str()) => (task, "high"),
            _ => return None,
        },
    };
    let mut arguments = target(task)?;
    arguments.insert("priority".to_owned(), json!(priority));
    Some(call("update_task", arguments))
}

fn priority_level(word: &str) -> Option<&'static str> {
    match word {
        "high" | "top" | "highest" => Some("high"),
        "medium" | "normal" | "mid" => Some("medium"),
        "low" | "lowest" => Some("low"),
        _ => None,
    }
}

/// A priority phrase at the start of `keys`: the level and how many words it took.
fn parse_priority(keys: &[&str]) -> Option<(&'static str, usize)> {
    let word = |i: usize| keys.get(i).copied().unwrap_or("");
    let lead = usize::from(matches!(word(0), "with" | "at"));
    let (first, second) = (word(lead), word(lead + 1));
    if let (Some(level), "priority" | "prio") = (priority_level(first), second) {
        return Some((level, lead + 2));
    }
    if let ("priority" | "prio", Some(level)) = (first, priority_level(second)) {
        return Some((level, lead + 2));
    }
    match first {
        "high-priority" | "urgent" | "urgently" | "asap" | "important" | "p1" => Some(("high", lead + 1)),
        "low-priority" | "p3" => Some(("low", lead + 1)),
        "medium-priority" | "p2" => Some(("medium", lead + 1)),
        _ => None,
    }
}

/// A due phrase at the start of `keys`, with an optional lead word ("due", "by", "on").
fn parse_due(keys: &[&str], today: Date) -> Option<(Date, usize)> {
    if let Some(found) = parse_date(keys, today) {
        return Some(found);
    }
    let lead = match keys.first()? {
        &"due" | &"by" | &"on" | &"for" | &"until" | &"before" => 1,
        _ => return None,
    };
    let due_on = usize::from(keys.first() == Some(&"due") && keys.get(1) == Some(&"on"));
    parse_date(&keys[lead + due_on..], today).map(|(date, used)| (date, used + lead + due_on))
}

/// "add buy milk tomorrow, high priority #shopping": the task's fields from the words after the
/// command.
fn add(words: &[Word], today: Date) -> Option<ToolCall> {
    let rest = after_any(
        words,
        &[
            "add a new task",
            "add a task to",
            "add a task",
            "add task",
            "add a todo",
            "add todo",
            "add",
            "create a task",
            "create task",
            "create",
            "new task",
            "new todo",
            "remind me to",
            "remind me",
            "i need to",
            "i have to",
            "i must",
            "todo:",
            "task:",
        ],
    )?;
    let keys = keys(rest);
    let (mut due, mut priority, mut tags) = (None, None, Vec::new());
    let mut title_words: Vec<&Word> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if let Some(tag) = rest[i]
            .raw
            .strip_prefix('#')
            .map(|t| t.trim_end_matches(|c: char| ",;:.!?".contains(c)))
            && !tag.is_empty()
        {
            tags.push(tag.to_owned());
            i += 1;
        } else if let Some((level, used)) = parse_priority(&keys[i..]).filter(|_| priority.is_none()) {
            priority = Some(level);
            i += used;
        } else if let Some((date, used)) = parse_due(&keys[i..], today).filter(|_| due.is_none()) {
            due = Some(date);
            i += used;
        } else {
            title_words.push(&rest[i]);
            i += 1;
        }
    }
    // Connectors left dangling by what was taken out: "buy milk, due tomorrow and urgent".
    while let Some(last) = title_words.last() {
        if ["and", "with", "due", "by", "on", "at", "for", "-", ""].contains(&last.key.as_str()) {
            title_words.pop();
        } else {
            break;
        }
    }
    let title_words: Vec<Word> = title_words.into_iter().cloned().collect();
    let title = text_of(strip_prefix(&title_words, "to").unwrap_or(&title_words[..]));
    if title.is_empty() {
        return None;
    }
    let mut arguments = Map::new();
    arguments.insert("title".to_owned(), json!(title));
    if let Some(date) = due {
        arguments.insert("due_date".to_owned(), json!(date.to_string()));
    }
    if let Some(level) = priority {
        arguments.insert("priority".to_owned(), json!(level));
    }
    if !tags.is_empty() {
        arguments.insert("tags".to_owned(), json!(tags));
    }
    Some(call("add_task", arguments))
}

/// "what's overdue?", "show done tasks tagged work", "list high priority tasks due this week".
fn list(words: &[Word], today: Date) -> Option<ToolCall> {
    const OPENERS: [&str; 18] = [
        "list", "show", "display", "view", "see", "what", "what's", "whats", "which", "anything", "any", "tasks", "my",
        "get", "find", "search", "do", "how",
    ];
    let first = words.first()?.key.as_str();
    if !OPENERS.contains(&first) && !words.iter().any(|w| w.key == "overdue") {
        return None;
    }
    let keys = keys(words);
    let spaced = format!(" {} ", keys.join(" "));
    let has = |phrase: &str| spaced.contains(&format!(" {phrase} "));
    let mut arguments = Map::new();
    let mut insert = |key: &str, value: Value| {
        arguments.insert(key.to_owned(), value);
    };
    let pending = [
        "pending",
        "open",
        "todo",
        "to-do",
        "remaining",
        "left",
        "incomplete",
        "unfinished",
        "outstanding",
        "undone",
        "still",
        "active",
    ];
    let done = ["done", "completed", "complete", "finished", "finish", "did"];
    if has("not done") || keys.iter().any(|k| pending.contains(k)) {
        insert("status", json!("pending"));
    } else if keys.iter().any(|k| done.contains(k)) {
        insert("status", json!("completed"));
    } else if keys.contains(&"all") || keys.contains(&"everything") {
        insert("status", json!("all"));
    }
    let day = |n: i64| today.checked_add(Duration::days(n)).map(|d| json!(d.to_string()));
    if keys.iter().any(|k| ["overdue", "late"].contains(k)) || has("past due") {
        insert("status", json!("pending"));
        insert("due_to", day(-1)?);
    } else if has("this week") {
        insert("status", json!("pending"));
        insert("due_from", day(0)?);
        insert("due_to", json!(end_of_week(today)?.to_string()));
    } else if has("next week") {
        let monday = on_or_after(today.checked_add(Duration::days(1))?, time::Weekday::Monday)?;
        insert("status", json!("pending"));
        insert("due_from", json!(monday.to_string()));
        insert("due_to", json!(end_of_week(monday)?.to_string()));
    } else if let Some(date) = (0..keys.len()).find_map(|i| parse_due(&keys[i..], today).map(|(d, _)| d)) {
        insert("status", json!("pending"));
        insert("due_from", json!(date.to_string()));
        insert("due_to", json!(date.to_string()));
    }
    if let Some(level) = (0..keys.len()).find_map(|i| parse_priority(&keys[i..]).map(|(l, _)| l)) {
        insert("priority", json!(level));
    }
    let tag = words
        .iter()
        .find_map(|w| w.raw.strip_prefix('#').filter(|t| !t.is_empty()).map(str::to_owned))
        .or_else(|| {
            let at = keys.iter().position(|k| ["tagged", "tag"].contains(k))?;
            words.get(at + 1).map(|w| text_of(std::slice::from_ref(w)))
        });
    if let Some(tag) = tag {
        insert("tag", json!(tag.trim_end_matches(|c: char| ",;:.!?".contains(c))));
    }
    let search_from = keys
        .iter()
        .position(|k| ["about", "matching", "containing", "mentioning", "called", "named"].contains(k))
        .map(|at| at + 1)
        .or_else(|| {
            // "search milk", "find tasks with milk", "search for milk".
            let rest = after_any(words, &["search for", "search", "find"])?;
            let rest = after_any(rest, &["tasks with", "tasks", "task", "for"]).unwrap_or(rest);
            Some(words.len() - rest.len())
        });
    if let Some(at) = search_from {
        let text = text_of(&words[at..]);
        if !text.is_empty() {
            insert("search", json!(text));
        }
    }
    Some(call("list_tasks", arguments))
}

/// "buy milk is done", "3 done".
fn done_suffix(words: &[Word]) -> Option<ToolCall> {
    for phrase in ["is done", "is finished", "is complete", "is completed", "done"] {
        let len = phrase.split(' ').count();
        if words.len() > len && strip_prefix(&words[words.len() - len..], phrase).is_some() {
            return target(&words[..words.len() - len]).map(|t| call("complete_task", t));
        }
    }
    None
}

/// Runs the plan for `message` and words what happened.
pub async fn respond(tools: Toolbox<'_>, message: &str, today: Date) -> ApiResult<Reply> {
    let call = match plan(message, today) {
        Plan::Call(call) => call,
        Plan::Help => {
            return Ok(Reply::builtin(
                format!("I can manage your tasks. Try: {EXAMPLES}."),
                vec![],
            ));
        }
        Plan::NotUnderstood => {
            return Ok(Reply::builtin(
                format!("Sorry, I did not understand that. Try: {EXAMPLES}. Say “help” for more."),
                vec![],
            ));
        }
    };
    let action = tools.call(call).await?;
    Ok(Reply::builtin(describe(&action), vec![action]))
}

/// One sentence (or a short list) saying what a tool call did.
pub fn describe(action: &Action) -> String {
    let result = &action.result;
    if let Some(error) = result.get("error") {
        let message = error["message"].as_str().unwrap_or("it failed");
        return match error["code"].as_str() {
            Some("ambiguous") => {
                let options: Vec<String> = result["candidates"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .map(|t| format!("#{} “{}”", t["id"], t["title"].as_str().unwrap_or("")))
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "Several tasks match: {}. Which one? Say it with the number, e.g. “{} {}”.",
                    options.join(", "),
                    verb(&action.tool),
                    result["candidates"][0]["id"]
                )
            }
            Some("not_found") => format!("I could not find that task ({message})."),
            _ => format!("I could not do that: {message}."),
        };
    }
    let task = &result["task"];
    let name = |t: &Value| format!("“{}” (#{})", t["title"].as_str().unwrap_or(""), t["id"]);
    match action.tool.as_str() {
        "add_task" => format!("Added {}{}.", name(task), details(task)),
        "complete_task" => format!("Marked {} as done.", name(task)),
        "delete_task" => format!("Deleted {}.", name(&result["deleted"])),
        "update_task" if action.arguments.get("completed") == Some(&json!(false)) => {
            format!("Reopened {}.", name(task))
        }
        "update_task" => format!("Updated {}{}.", name(task), details(task)),
        _ => list_text(result),
    }
}

fn verb(tool: &str) -> &'static str {
    match tool {
        "delete_task" => "delete",
        "update_task" => "change",
        _ => "complete",
    }
}

/// ", due 2026-12-04, high priority, #shopping" for the fields that are set.
fn details(task: &Value) -> String {
    let mut out = String::new();
    if let Some(due) = task["due_date"].as_str() {
        out.push_str(&format!(", due {due}"));
    }
    if task["priority"] != "medium" {
        out.push_str(&format!(", {} priority", task["priority"].as_str().unwrap_or("")));
    }
    for tag in task["tags"].as_array().into_iter().flatten() {
        out.push_str(&format!(", #{}", tag.as_str().unwrap_or("")));
    }
    out
}

fn list_text(result: &Value) -> String {
    let tasks = result["tasks"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        return "No tasks match.".to_owned();
    }
    let total = result["total"].as_i64().unwrap_or(tasks.len() as i64);
    let mut out = if total == 1 {
        "1 task:".to_owned()
    } else {
        format!("{total} tasks:")
    };
    for task in &tasks {
        let mark = if task["completed"] == true { "✓" } else { "•" };
        out.push_str(&format!(
            "\n{mark} #{} {}{}",
            task["id"],
            task["title"].as_str().unwrap_or(""),
            details(task)
        ));
    }
    if total > tasks.len() as i64 {
        out.push_str(&format!("\n… and {} more.", total - tasks.len() as i64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    /// A Thursday.
    const TODAY: Date = date!(2026 - 12 - 03);

    fn expect_call(phrase: &str, tool: &str, arguments: Value) {
        match plan(phrase, TODAY) {
            Plan::Call(call) => assert_eq!(
                (call.tool.as_str(), &call.arguments),
                (tool, &arguments),
                "phrase: {phrase:?}"
            ),
            other => panic!("phrase {phrase:?}: expected {tool} {arguments}, got {other:?}"),
        }
    }

    #[test]
    fn adding_reads_titles_due_words_priorities_and_tags() {
        let table: &[(&str, Value)] = &[
            ("add buy milk", json!({"title": "buy milk"})),
            ("Add Buy Milk", json!({"title": "Buy Milk"})),
            (
                "add buy milk tomorrow",
                json!({"title": "buy milk", "due_date": "2026-12-04"}),
            ),
            (
                "add buy milk tomorrow, high priority",
                json!({"title": "buy milk", "due_date": "2026-12-04", "priority": "high"}),
            ),
            (
                "add call mom today",
                json!({"title": "call mom", "due_date": "2026-12-03"}),
            ),
            (
                "add pay rent tonight",
                json!({"title": "pay rent", "due_date": "2026-12-03"}),
            ),
            (
                "add dentist next monday",
                json!({"title": "dentist", "due_date": "2026-12-07"}),
            ),
            (
                "add dentist on monday",
                json!({"title": "dentist", "due_date": "2026-12-07"}),
            ),
            (
                "add report friday",
                json!({"title": "report", "due_date": "2026-12-04"}),
            ),
            (
                "add report this friday",
                json!({"title": "report", "due_date": "2026-12-04"}),
            ),
            (
                "add standup thursday",
                json!({"title": "standup", "due_date": "2026-12-03"}),
            ),
            (
                "add standup next thursday",
                json!({"title": "standup", "due_date": "2026-12-10"}),
            ),
            (
                "add water plants in 3 days",
                json!({"title": "water plants", "due_date": "2026-12-06"}),
            ),
            (
                "add water plants in three days",
                json!({"title": "water plants", "due_date": "2026-12-06"}),
            ),
            (
                "add renew passport in 2 weeks",
                json!({"title": "renew passport", "due_date": "2026-12-17"}),
            ),
            (
                "add renew passport in a week",
                json!({"title": "renew passport", "due_date": "2026-12-10"}),
            ),
            (
                "add plan trip next week",
                json!({"title": "plan trip", "due_date": "2026-12-07"}),
            ),
            (
                "add clean garage this weekend",
                json!({"title": "clean garage", "due_date": "2026-12-05"}),
            ),
            (
                "add clean garage the day after tomorrow",
                json!({"title": "clean garage", "due_date": "2026-12-05"}),
            ),
            (
                "add submit taxes by 2027-01-31",
                json!({"title": "submit taxes", "due_date": "2027-01-31"}),
            ),
            (
                "add submit taxes due 2027-01-31",
                json!({"title": "submit taxes", "due_date": "2027-01-31"}),
            ),
            (
                "add buy gifts dec 20",
                json!({"title": "buy gifts", "due_date": "2026-12-20"}),
            ),
            (
                "add buy gifts on december 20th",
                json!({"title": "buy gifts", "due_date": "2026-12-20"}),
            ),
            (
                "add party 24 december",
                json!({"title": "party", "due_date": "2026-12-24"}),
            ),
            (
                "add party 24th of december",
                json!({"title": "party", "due_date": "2026-12-24"}),
            ),
            (
                "add new year plans jan 2",
                json!({"title": "new year plans", "due_date": "2027-01-02"}),
            ),
            (
                "add audit march 3 2027",
                json!({"title": "audit", "due_date": "2027-03-03"}),
            ),
            ("add fix bug urgent", json!({"title": "fix bug", "priority": "high"})),
            ("add fix bug asap", json!({"title": "fix bug", "priority": "high"})),
            (
                "add fix bug, priority high",
                json!({"title": "fix bug", "priority": "high"}),
            ),
            (
                "add fix bug with high priority",
                json!({"title": "fix bug", "priority": "high"}),
            ),
            (
                "add read book low priority",
                json!({"title": "read book", "priority": "low"}),
            ),
            (
                "add read book, priority: low",
                json!({"title": "read book", "priority": "low"}),
            ),
            (
                "add tidy desk normal priority",
                json!({"title": "tidy desk", "priority": "medium"}),
            ),
            (
                "add buy milk #shopping",
                json!({"title": "buy milk", "tags": ["shopping"]}),
            ),
            (
                "add buy milk #shopping #home",
                json!({"title": "buy milk", "tags": ["shopping", "home"]}),
            ),
            (
                "add buy milk tomorrow high priority #shopping",
                json!({"title": "buy milk", "due_date": "2026-12-04", "priority": "high", "tags": ["shopping"]}),
            ),
            ("add task buy milk", json!({"title": "buy milk"})),
            ("add a task to buy milk", json!({"title": "buy milk"})),
            ("add a task: buy milk", json!({"title": "buy milk"})),
            ("create a task call the bank", json!({"title": "call the bank"})),
            ("new task call the bank", json!({"title": "call the bank"})),
            (
                "remind me to call the bank tomorrow",
                json!({"title": "call the bank", "due_date": "2026-12-04"}),
            ),
            ("I need to renew my license", json!({"title": "renew my license"})),
            ("please add buy bread", json!({"title": "buy bread"})),
            ("can you add buy bread please", json!({"title": "buy bread"})),
            (
                "add \"buy milk\" tomorrow",
                json!({"title": "buy milk", "due_date": "2026-12-04"}),
            ),
            ("add buy milk and eggs", json!({"title": "buy milk and eggs"})),
            (
                "add buy milk, due tomorrow and urgent",
                json!({"title": "buy milk", "due_date": "2026-12-04", "priority": "high"}),
            ),
        ];
        for (phrase, arguments) in table {
            expect_call(phrase, "add_task", arguments.clone());
        }
    }

    #[test]
    fn listing_reads_status_due_ranges_tags_priorities_and_search() {
        let table: &[(&str, Value)] = &[
            ("list", json!({})),
            ("list my tasks", json!({})),
            ("show my tasks", json!({})),
            ("what are my tasks?", json!({})),
            ("show all tasks", json!({"status": "all"})),
            ("show everything", json!({"status": "all"})),
            ("what's pending?", json!({"status": "pending"})),
            ("what is left to do", json!({"status": "pending"})),
            ("show open tasks", json!({"status": "pending"})),
            ("what have I not done", json!({"status": "pending"})),
            ("show done tasks", json!({"status": "completed"})),
            ("list completed tasks", json!({"status": "completed"})),
            ("what did I finish", json!({"status": "completed"})),
            ("what's overdue?", json!({"status": "pending", "due_to": "2026-12-02"})),
            ("overdue", json!({"status": "pending", "due_to": "2026-12-02"})),
            (
                "show overdue tasks",
                json!({"status": "pending", "due_to": "2026-12-02"}),
            ),
            (
                "which tasks are late",
                json!({"status": "pending", "due_to": "2026-12-02"}),
            ),
            (
                "what's due today?",
                json!({"status": "pending", "due_from": "2026-12-03", "due_to": "2026-12-03"}),
            ),
            (
                "what do I have today",
                json!({"status": "pending", "due_from": "2026-12-03", "due_to": "2026-12-03"}),
            ),
            (
                "show tasks due tomorrow",
                json!({"status": "pending", "due_from": "2026-12-04", "due_to": "2026-12-04"}),
            ),
            (
                "what's due this week",
                json!({"status": "pending", "due_from": "2026-12-03", "due_to": "2026-12-06"}),
            ),
            (
                "show tasks for next week",
                json!({"status": "pending", "due_from": "2026-12-07", "due_to": "2026-12-13"}),
            ),
            (
                "what's due on friday",
                json!({"status": "pending", "due_from": "2026-12-04", "due_to": "2026-12-04"}),
            ),
            ("show tasks tagged work", json!({"tag": "work"})),
            ("list #work tasks", json!({"tag": "work"})),
            ("show pending #home tasks", json!({"status": "pending", "tag": "home"})),
            ("show high priority tasks", json!({"priority": "high"})),
            ("list urgent tasks", json!({"priority": "high"})),
            ("show low priority tasks", json!({"priority": "low"})),
            (
                "show pending high priority tasks due this week",
                json!({"status": "pending", "priority": "high", "due_from": "2026-12-03", "due_to": "2026-12-06"}),
            ),
            ("show tasks about milk", json!({"search": "milk"})),
            ("find milk", json!({"search": "milk"})),
            ("search for dentist", json!({"search": "dentist"})),
        ];
        for (phrase, arguments) in table {
            expect_call(phrase, "list_tasks", arguments.clone());
        }
    }

    #[test]
    fn completing_reopening_deleting_renaming_and_moving_name_a_task_by_id_or_title() {
        let table: &[(&str, &str, Value)] = &[
            ("complete 3", "complete_task", json!({"id": 3})),
            ("complete #3", "complete_task", json!({"id": 3})),
            ("complete task 3", "complete_task", json!({"id": 3})),
            ("done 12", "complete_task", json!({"id": 12})),
            ("finish buy milk", "complete_task", json!({"title": "buy milk"})),
            ("mark 3 as done", "complete_task", json!({"id": 3})),
            ("mark buy milk done", "complete_task", json!({"title": "buy milk"})),
            (
                "mark the milk task as completed",
                "complete_task",
                json!({"title": "milk"}),
            ),
            ("check off buy milk", "complete_task", json!({"title": "buy milk"})),
            ("I finished the report", "complete_task", json!({"title": "report"})),
            ("buy milk is done", "complete_task", json!({"title": "buy milk"})),
            ("complete \"Buy Milk\"", "complete_task", json!({"title": "Buy Milk"})),
            ("reopen 3", "update_task", json!({"id": 3, "completed": false})),
            (
                "undo buy milk",
                "update_task",
                json!({"title": "buy milk", "completed": false}),
            ),
            (
                "mark 3 as not done",
                "update_task",
                json!({"id": 3, "completed": false}),
            ),
            (
                "mark buy milk as pending",
                "update_task",
                json!({"title": "buy milk", "completed": false}),
            ),
            ("delete 3", "delete_task", json!({"id": 3})),
            ("delete task #3", "delete_task", json!({"id": 3})),
            ("remove buy milk", "delete_task", json!({"title": "buy milk"})),
            ("get rid of the milk task", "delete_task", json!({"title": "milk"})),
            ("cancel dentist", "delete_task", json!({"title": "dentist"})),
            (
                "rename 3 to buy oat milk",
                "update_task",
                json!({"id": 3, "new_title": "buy oat milk"}),
            ),
            (
                "rename buy milk to buy oat milk",
                "update_task",
                json!({"title": "buy milk", "new_title": "buy oat milk"}),
            ),
            (
                "change the title of 3 to call dad",
                "update_task",
                json!({"id": 3, "new_title": "call dad"}),
            ),
            (
                "move 3 to friday",
                "update_task",
                json!({"id": 3, "due_date": "2026-12-04"}),
            ),
            (
                "postpone buy milk until next monday",
                "update_task",
                json!({"title": "buy milk", "due_date": "2026-12-07"}),
            ),
            (
                "make 3 high priority",
                "update_task",
                json!({"id": 3, "priority": "high"}),
            ),
            (
                "mark dentist urgent",
                "update_task",
                json!({"title": "dentist", "priority": "high"}),
            ),
        ];
        for (phrase, tool, arguments) in table {
            expect_call(phrase, tool, arguments.clone());
        }
    }

    #[test]
    fn help_and_what_is_not_understood() {
        for phrase in ["help", "Help!", "what can you do?", "please help"] {
            assert_eq!(plan(phrase, TODAY), Plan::Help, "{phrase:?}");
        }
        for phrase in [
            "",
            "   ",
            "hello",
            "banana",
            "the weather is nice",
            "complete",
            "delete",
            "add",
            "rename 3",
            "delete everything",
            "done tasks",
        ] {
            assert_eq!(plan(phrase, TODAY), Plan::NotUnderstood, "{phrase:?}");
        }
    }

    #[test]
    fn dates_follow_the_injected_today() {
        // The same words on another day (a Sunday at the end of a year) give other dates.
        let sunday = date!(2026 - 12 - 27);
        let due = |phrase: &str| match plan(phrase, sunday) {
            Plan::Call(call) => call.arguments["due_date"].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(due("add a tomorrow"), "2026-12-28");
        assert_eq!(due("add a next monday"), "2026-12-28");
        assert_eq!(due("add a sunday"), "2026-12-27");
        assert_eq!(due("add a next sunday"), "2027-01-03");
        assert_eq!(due("add a in 7 days"), "2027-01-03");
        assert_eq!(due("add a dec 1"), "2027-12-01");
    }

    #[test]
    fn describing_an_ambiguous_match_asks_which() {
        let action = Action {
            tool: "complete_task".to_owned(),
            arguments: json!({"title": "milk"}),
            result: json!({
                "error": {"code": "ambiguous", "message": "2 tasks match"},
                "candidates": [{"id": 4, "title": "buy milk"}, {"id": 7, "title": "milk the cow"}],
            }),
        };
        let text = describe(&action);
        assert!(
            text.contains("#4 “buy milk”") && text.contains("#7 “milk the cow”"),
            "{text}"
        );
        assert!(text.contains("Which one?") && text.contains("complete 4"), "{text}");
    }
}
