//! The JSON log line, written straight into the line's buffer.
//!
//! Its lines are those of `tracing_subscriber`'s JSON format as [`super::init`] configured it
//! (the event's fields flattened, its target, the current span's fields and name under `span`),
//! a test holds the two to the same JSON. That format parsed the current span's stored fields
//! back into a map and wrote them again for every line, and went through a UTF-8 check per
//! write: a tenth of the backend's CPU time on a list request (perf); this writes the stored
//! fields as they are.

use std::fmt::{self, Write as _};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::Writer,
        time::{FormatTime, SystemTime},
    },
    registry::LookupSpan,
};

/// The JSON line format (see the module docs).
pub(super) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = FieldWriter {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_str(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":")?;
            let extensions = span.extensions();
            // The span's fields as `N` (`JsonFields`) stored them: one JSON object, `{}` for none.
            let stored = extensions
                .get::<FormattedFields<N>>()
                .map(|stored| stored.fields.trim_end())
                .and_then(|fields| fields.strip_suffix('}'))
                .filter(|fields| fields.starts_with('{'));
            match stored {
                Some("{") | None => writer.write_str("{")?,
                Some(fields) => {
                    writer.write_str(fields)?;
                    writer.write_char(',')?;
                }
            }
            writer.write_str("\"name\":")?;
            write_str(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes an event's fields as `,"name":value` each, as `tracing_serde` does: numbers up to 64
/// bits and booleans as themselves, everything else (128-bit numbers too) as a string.
struct FieldWriter<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl FieldWriter<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.writer.write_char(',')?;
                write_str(self.writer, field.name())?;
                self.writer.write_char(':')?;
                value(self.writer)
            })();
        }
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json writes it: the shortest text that reads back the same; null if not finite.
        self.entry(field, |w| match serde_json::Number::from_f64(value) {
            Some(number) => write!(w, "{number}"),
            None => w.write_str("null"),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| write_str(w, value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.entry(field, |w| write_display(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| write_display(w, &format_args!("{value:?}")));
    }
}

/// Writes `value`'s text as a JSON string, without holding it whole first.
fn write_display(writer: &mut Writer<'_>, value: &dyn fmt::Display) -> fmt::Result {
    /// Escapes what passes through.
    struct Escaping<'a, 'w>(&'a mut Writer<'w>);
    impl fmt::Write for Escaping<'_, '_> {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            write_escaped(self.0, text)
        }
    }
    writer.write_char('"')?;
    write!(Escaping(writer), "{value}")?;
    writer.write_char('"')
}

/// Writes `text` as a JSON string.
fn write_str(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    write_escaped(writer, text)?;
    writer.write_char('"')
}

/// Writes `text` escaped as inside a JSON string, with serde_json's escapes: `\"`, `\\`, the
/// short forms of backspace, form feed, newline, carriage return and tab, `\u00XX` for the other
/// control characters; everything else as it is.
fn write_escaped(writer: &mut Writer<'_>, text: &str) -> fmt::Result {
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        writer.write_str(&text[start..at])?;
        if escape.is_empty() {
            write!(writer, "\\u{byte:04x}")?;
        } else {
            writer.write_str(escape)?;
        }
        start = at + 1;
    }
    writer.write_str(&text[start..])
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use serde_json::Value;

    use super::*;

    /// Lines written, shared with the subscriber writing them.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn parsed(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            assert!(text.ends_with('\n'), "{text}");
            text.lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
                .collect()
        }
    }

    /// Every kind of field, in and out of spans, with text that needs escaping.
    fn log_everything() {
        tracing::info!("outside any span");
        let request = tracing::info_span!("request", method = "GET", route = "/a\"b\\c", request_id = "x\n\u{1}y");
        let _entered = request.enter();
        tracing::warn!(
            status = 503_u16,
            negative = -7_i64,
            big = u128::MAX,
            small = i128::MIN,
            latency_ms = 0.675,
            whole = 1.0,
            not_a_number = f64::NAN,
            yes = true,
            text = "tab\there \u{7f} é 😀 \u{8}\u{c}\r",
            debugged = ?Some("quoted \"x\""),
            shown = %"a\u{1f}b",
            "request failed {}",
            "with \"args\""
        );
        let io_error = io::Error::other("disk \"full\"");
        let error: &(dyn std::error::Error + 'static) = &io_error;
        tracing::error!(error, "an error");
        let empty = tracing::info_span!("empty");
        tracing::info!(parent: &empty, "explicit parent without fields");
        let inner = tracing::debug_span!("inner", depth = 2);
        inner.in_scope(|| tracing::info!(target: "custom::target", "nested"));
    }

    fn lines_of(subscriber: impl Subscriber + Send + Sync) {
        tracing::subscriber::with_default(subscriber, log_everything);
    }

    #[test]
    fn lines_are_the_json_tracing_subscriber_writes() {
        let ours = Lines::default();
        let theirs = Lines::default();
        let writer = ours.clone();
        lines_of(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(JsonLines)
                .finish(),
        );
        let writer = theirs.clone();
        lines_of(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        );
        let (mut ours, mut theirs) = (ours.parsed(), theirs.parsed());
        assert_eq!(ours.len(), 5);
        assert_eq!(ours.len(), theirs.len());
        for (our, their) in ours.iter_mut().zip(&mut theirs) {
            let (ours_at, theirs_at) = (our["timestamp"].take(), their["timestamp"].take());
            // 2026-12-06T02:31:00.707702Z
            let shape = |at: &Value| {
                at.as_str()
                    .unwrap()
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '0' } else { c })
                    .collect::<String>()
            };
            assert_eq!(shape(&ours_at), "0000-00-00T00:00:00.000000Z");
            assert_eq!(shape(&ours_at), shape(&theirs_at));
            assert_eq!(our, their);
        }
        assert_eq!(ours[1]["span"]["request_id"], "x\n\u{1}y");
        assert_eq!(ours[1]["text"], "tab\there \u{7f} é 😀 \u{8}\u{c}\r");
        assert_eq!(ours[1]["not_a_number"], Value::Null);
        assert_eq!(ours[3]["span"], serde_json::json!({"name": "empty"}));
        assert_eq!(ours[4]["span"], serde_json::json!({"name": "inner", "depth": 2}));
    }
}
