//! [`ParseError`]: why a delivery could not be read, and where.

use std::fmt;

use crate::event_type::EventType;
use crate::text::{excerpt, write_one_line};

/// The most characters of the event type, event id or field path an error
/// keeps, and the most bytes each takes in a message, escapes included; with
/// the quoted value (at most 240 bytes), a message stays under 1 KB.
const PART_MAX_CHARS: usize = 64;
const PART_MAX_BYTES: usize = 160;

/// A delivery's text as an error keeps it: shortened if long.
fn bounded(text: &str) -> String {
    excerpt(text, PART_MAX_CHARS, PART_MAX_BYTES)
}

/// Why a delivery could not be read as an [`EventEnvelope`](crate::EventEnvelope).
///
/// Its `Display` names the event type and id when they could be read, the field
/// path (`payload.ValidTo`) with what was expected and what was found, or the line
/// and column of a JSON syntax error:
///
/// ```
/// use voyado_webhooks::{EventEnvelope, ParseErrorKind};
///
/// let body = r#"{"eventType": "point.balance.updated", "id": "evt-1",
///                "payload": {"contactId": "c-1", "balance": "lots"}}"#;
/// let error = EventEnvelope::from_slice(body.as_bytes()).unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     r#"point.balance.updated event "evt-1": payload.balance: expected a decimal number, found "lots""#
/// );
/// assert_eq!(error.path(), Some("payload.balance"));
/// assert_eq!(error.event_id(), Some("evt-1"));
/// assert!(matches!(error.kind(), ParseErrorKind::InvalidValue { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    kind: ParseErrorKind,
    path: Option<String>,
    event_type: Option<EventType>,
    event_id: Option<String>,
}

/// What kind of problem a [`ParseError`] is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is not well-formed JSON: not UTF-8, truncated, trailing
    /// characters, or nested too deeply.
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Syntax {
        /// What the JSON parser reported.
        message: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// A required field is absent.
    #[error("required field is missing")]
    MissingField,
    /// A value has the wrong type or form (a required field's `null` included).
    #[error("expected {expected}, found {found}")]
    InvalidValue {
        /// What the field takes, such as `a decimal number`.
        expected: &'static str,
        /// The value received, as JSON text (shortened if long).
        found: String,
    },
    /// A value nests arrays and objects more deeply than `limit`.
    #[error("nested more than {limit} levels deep")]
    TooDeep {
        /// The deepest nesting accepted.
        limit: usize,
    },
}

impl ParseError {
    /// An error at `path` (shortened if long).
    pub(crate) fn new(kind: ParseErrorKind, path: Option<String>) -> Self {
        ParseError(Box::new(Inner {
            kind,
            path: path.as_deref().map(bounded),
            event_type: None,
            event_id: None,
        }))
    }

    /// Fills in the event type and id where they are not known yet, shortened
    /// if long.
    pub(crate) fn with_event(mut self, event_type: Option<&EventType>, event_id: Option<&str>) -> Self {
        let inner = &mut *self.0;
        if inner.event_type.is_none() {
            inner.event_type = event_type.map(|event_type| match event_type {
                EventType::Other(name) => EventType::Other(bounded(name)),
                known => known.clone(),
            });
        }
        if inner.event_id.is_none() {
            inner.event_id = event_id.map(bounded);
        }
        self
    }

    /// A syntax error reported by serde_json.
    pub(crate) fn syntax(error: &serde_json::Error) -> Self {
        let position = format!(" at line {} column {}", error.line(), error.column());
        let message = error.to_string();
        let message = message.strip_suffix(&position).unwrap_or(&message).to_owned();
        let kind = ParseErrorKind::Syntax {
            message,
            line: error.line(),
            column: error.column(),
        };
        ParseError::new(kind, None)
    }

    /// A body that is not UTF-8 from byte `offset` on.
    pub(crate) fn not_utf8(body: &[u8], offset: usize) -> Self {
        let before = body.get(..offset).unwrap_or(body);
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at.saturating_add(1));
        let kind = ParseErrorKind::Syntax {
            message: "invalid UTF-8".to_owned(),
            line: before.iter().filter(|&&b| b == b'\n').count().saturating_add(1),
            column: offset.saturating_sub(line_start).saturating_add(1),
        };
        ParseError::new(kind, None)
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.0.kind
    }

    /// The path of the offending field, such as `payload.ValidTo` (spelled as
    /// received, and shortened past 64 characters), or `None` for a problem with
    /// the body as a whole.
    pub fn path(&self) -> Option<&str> {
        self.0.path.as_deref()
    }

    /// The delivery's event type, if it could be read (an unknown name shortened
    /// past 64 characters).
    pub fn event_type(&self) -> Option<&EventType> {
        self.0.event_type.as_ref()
    }

    /// The delivery's event id, if it could be read (shortened past 64
    /// characters).
    pub fn event_id(&self) -> Option<&str> {
        self.0.event_id.as_deref()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner {
            kind,
            path,
            event_type,
            event_id,
        } = &*self.0;
        // Every part taken from the delivery is bounded and kept on one line, so
        // no delivery can make a message long or forge a log line.
        if let Some(event_type) = event_type {
            write_one_line(f, event_type.as_str())?;
            f.write_str(" ")?;
        }
        match event_id {
            Some(id) => write!(f, "event {id:?}: ")?,
            None if event_type.is_some() => f.write_str("event: ")?,
            None => {}
        }
        if let Some(path) = path {
            write_one_line(f, path)?;
            f.write_str(": ")?;
        }
        write!(f, "{kind}")
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_what_is_known() {
        let missing = ParseError::new(ParseErrorKind::MissingField, Some("payload.contactId".into()));
        assert_eq!(
            missing.to_string(),
            "payload.contactId: required field is missing"
        );
        let with_type = missing
            .clone()
            .with_event(Some(&EventType::LoyaltyAddPoints), None);
        assert_eq!(
            with_type.to_string(),
            "loyalty.addPoints event: payload.contactId: required field is missing"
        );
        let with_id = missing.with_event(None, Some("e-1"));
        assert_eq!(
            with_id.to_string(),
            "event \"e-1\": payload.contactId: required field is missing"
        );
    }

    #[test]
    fn with_event_keeps_what_was_already_known() {
        let error = ParseError::new(ParseErrorKind::MissingField, None)
            .with_event(Some(&EventType::LoyaltyAddPoints), Some("a"))
            .with_event(Some(&EventType::PointBalanceUpdated), Some("b"));
        assert_eq!(error.event_type(), Some(&EventType::LoyaltyAddPoints));
        assert_eq!(error.event_id(), Some("a"));
    }

    #[test]
    fn syntax_errors_carry_their_position_once() {
        let json_error = serde_json::from_str::<serde_json::Value>("{\n  \"a\": tru }").err();
        let error = json_error.as_ref().map(ParseError::syntax);
        let Some(ParseErrorKind::Syntax {
            message,
            line,
            column,
        }) = error.as_ref().map(ParseError::kind)
        else {
            panic!("not a syntax error: {error:?}");
        };
        assert_eq!((*line, *column), (2, 11));
        assert!(!message.contains("line"), "{message}");
        assert!(error.is_some_and(|e| e.to_string().starts_with("invalid JSON at line 2 column 11: ")));
    }
}
