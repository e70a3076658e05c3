//! How the JSON log lines keep a span's fields: as a JSON object written once when the span
//! opens and extended in place when a field is recorded later.
//!
//! tracing-subscriber's own JSON field formatter parses the whole object back and writes it
//! anew for every field recorded after the span opened; every call's span records a few
//! (its trace id, its status code), which made that parsing the largest single cost of a call.
//! Fields named `otel.*` are directions to the OpenTelemetry layer (a span's name and kind), not
//! facts about the call, and are left out of the logs.
//!
//! [`JsonLines`] writes each event as one JSON line, the current span's object copied in as it
//! is: tracing-subscriber's own JSON event formatter parses that object into a map for every
//! line it writes and serialises it again, which cost more than the rest of a logged call.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::registry::LookupSpan;

/// The span field formatter of the JSON log lines (see the module).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        // Written into a buffer of its own first, then handed over whole: the writer is reached
        // through a `dyn Write`, and a span's fields are many small pieces.
        let mut object = String::with_capacity(256);
        object.push('{');
        let mut visitor = Members { out: &mut object, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result?;
        object.push('}');
        writer.write_str(&object)
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        if current.fields.is_empty() {
            let writer = current.as_writer();
            return self.format_fields(writer, fields);
        }
        // The object ends in `}`: reopen it, add the members, close it again.
        if current.fields.pop() != Some('}') {
            return Err(fmt::Error);
        }
        let first = current.fields.ends_with('{');
        let mut visitor = Members { out: &mut current.fields, first, result: Ok(()) };
        fields.record(&mut visitor);
        let result = visitor.result;
        current.fields.push('}');
        result
    }
}

/// The JSON log line of an event: `timestamp`, `level`, the event's fields (its `message`
/// among them), `target`, and `span`, the fields of the span it happened in with the span's
/// `name` (the shape of tracing-subscriber's JSON lines with flattened events and the current
/// span).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonSpanFields> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        // Events forwarded from the `log` crate name their real target in their fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        SystemTime.format_time(&mut Writer::new(&mut line))?;
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push('"');
        let mut visitor = Members { out: &mut line, first: false, result: Ok(()) };
        event.record(&mut visitor);
        visitor.result?;
        line.push_str(",\"target\":");
        write_json_string(&mut line, meta.target())?;
        let span = event.parent().and_then(|id| ctx.span(id)).or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            let extensions = span.extensions();
            let fields = extensions.get::<FormattedFields<JsonSpanFields>>().map_or("{}", |f| f.fields.as_str());
            line.push_str(",\"span\":{");
            match fields.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')) {
                Some(members) if !members.is_empty() => {
                    line.push_str(members);
                    line.push(',');
                }
                _ => {}
            }
            line.push_str("\"name\":");
            write_json_string(&mut line, span.name())?;
            line.push('}');
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Writes fields as members of a JSON object.
struct Members<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Members<'_, W> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("otel.") || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.first) { "" } else { "," };
        self.result = (|| {
            self.out.write_str(separator)?;
            write_json_string(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for Members<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| write_json_string(out, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.member(field, |out| write!(out, "{value}"));
        } else {
            self.member(field, |out| out.write_str("null"));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

fn write_json_string<W: fmt::Write>(out: &mut W, value: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(value)?;
    out.write_char('"')
}

/// Whether `bytes` hold a control character, `"` or `\\`: eight bytes at a time, since nearly
/// everything a log line holds needs no escaping and is looked at whole.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `word` is below `n` (for `n` up to 0x80).
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH != 0;
    let holds = |word: u64, byte: u8| below(word ^ (ONES * u64::from(byte)), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("eight bytes"));
        if below(word, 0x20) || holds(word, b'"') || holds(word, b'\\') {
            return true;
        }
    }
    chunks.remainder().iter().any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

/// Escapes what it is given as the inside of a JSON string.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !needs_escaping(text.as_bytes()) {
            return self.0.write_str(text);
        }
        // Every character that needs escaping is ASCII, so the text is cut only at ASCII bytes.
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    /// The JSON lines a subscriber wrote, with the span fields formatted by `JsonSpanFields`.
    fn lines_of(work: impl FnOnce()) -> Vec<serde_json::Value> {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let written = sink.0.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(super::JsonSpanFields)
            .event_format(super::JsonLines)
            .with_writer(move || sink.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), work);
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
    }

    #[test]
    fn span_fields_recorded_late_join_those_given_at_the_start_and_text_is_escaped() {
        let lines = lines_of(|| {
            let span = tracing::info_span!(
                "rpc",
                otel.name = "pkg.Service/Method",
                correlation_id = "c-1",
                note = %"say \"hi\"\n\t\\ \u{1}",
                count = 3u64,
                ratio = 0.5,
                ok = true,
                trace_id = tracing::field::Empty,
                code = tracing::field::Empty,
            );
            span.in_scope(|| tracing::info!("before"));
            span.record("trace_id", "0af7651916cd43dd8448eb211c80319c");
            span.record("code", -1i64);
            span.in_scope(|| tracing::info!("after"));
        });
        assert_eq!(lines.len(), 2);
        let before = &lines[0]["span"];
        assert_eq!(before["correlation_id"], "c-1");
        assert_eq!(before["note"], "say \"hi\"\n\t\\ \u{1}");
        assert_eq!(
            (before["count"].as_u64(), before["ratio"].as_f64(), before["ok"].as_bool()),
            (Some(3), Some(0.5), Some(true))
        );
        assert!(before.get("trace_id").is_none() && before.get("otel.name").is_none(), "{before}");
        let after = &lines[1]["span"];
        assert_eq!(after["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(after["code"], -1);
        assert_eq!(after["correlation_id"], "c-1");
    }

    #[test]
    fn what_needs_escaping_is_found_at_every_place_of_every_length() {
        let plain = |byte: u8| byte >= 0x20 && byte != b'"' && byte != b'\\';
        for len in 0..20 {
            for at in 0..len {
                for special in (0u8..=0xff).filter(|&b| b < 0x80) {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert_eq!(super::needs_escaping(&bytes), !plain(special), "{special:#x} at {at} of {len}");
                }
            }
            assert!(!super::needs_escaping(&vec![0x7f; len]));
        }
        // UTF-8 beyond ASCII (every byte 0x80 or more) needs none.
        assert!(!super::needs_escaping("déjà vu — ünïcödé, ☃ and more ☃☃☃".as_bytes()));
        assert!(super::needs_escaping("déjà \"vu\" ☃☃".as_bytes()));
    }

    #[test]
    fn a_line_has_the_time_level_fields_target_and_its_span_named() {
        let lines = lines_of(|| {
            tracing::warn!(attempt = 2u64, "outside \"any\" span");
            let span = tracing::info_span!("work", job = "j-1");
            span.in_scope(|| tracing::info!(done = true, "inside"));
            let empty = tracing::info_span!("empty");
            empty.in_scope(|| tracing::info!("in an empty span"));
        });
        assert_eq!(lines.len(), 3);
        let outside = &lines[0];
        assert_eq!(outside["level"], "WARN");
        assert_eq!(outside["message"], "outside \"any\" span");
        assert_eq!(outside["attempt"], 2);
        assert_eq!(outside["target"], module_path!());
        assert!(outside.get("span").is_none(), "{outside}");
        let timestamp = outside["timestamp"].as_str().unwrap();
        assert!(timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.contains('T'), "{timestamp}");
        let inside = &lines[1];
        assert_eq!((inside["level"].as_str(), inside["done"].as_bool()), (Some("INFO"), Some(true)));
        assert_eq!(inside["span"], serde_json::json!({"job": "j-1", "name": "work"}));
        assert_eq!(lines[2]["span"], serde_json::json!({"name": "empty"}));
    }

    #[test]
    fn a_span_opened_without_fields_takes_them_later() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("quiet", late = tracing::field::Empty);
            span.record("late", "yes");
            span.record("later", 1u64); // not a field of the span: ignored
            span.in_scope(|| tracing::info!("now"));
        });
        assert_eq!(lines[0]["span"]["late"], "yes");
    }
}
