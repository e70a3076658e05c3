//! How the JSON log lines keep a span's fields: as a JSON object written once when the span
//! opens and extended in place when a field is recorded later.
//!
//! tracing-subscriber's own JSON field formatter parses the whole object back and writes it
//! anew for every field recorded after the span opened; every call's span records a few
//! (its trace id, its status code), which made that parsing the largest single cost of a call.
//! Fields named `otel.*` are directions to the OpenTelemetry layer (a span's name and kind), not
//! facts about the call, and are left out of the logs.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;

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

/// Writes fields as members of a JSON object.
struct Members<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Members<'_, W> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("otel.") {
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

/// Escapes what it is given as the inside of a JSON string.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if !text.bytes().any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
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
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(super::JsonSpanFields)
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
