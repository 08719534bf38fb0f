//! Structure-aware mutations of a JSON fixture, driven by a string of choice
//! bytes. `tests/robustness.rs` feeds it bytes from proptest and the fuzz target
//! `mutate` feeds it libFuzzer's; both then run [`check`].
//!
//! A mutation either keeps the delivery's meaning under the tolerance rules (a
//! known field name recased, a number or boolean quoted, a numeric string
//! unquoted, a timestamp rewritten, a known payload field moved, the event type
//! recased) or may change it (members dropped, repeated, renamed, inserted or
//! moved, values replaced by odd numbers, long strings or deep nesting, values
//! wrapped, the text cut or a byte inserted). [`Mutated::preserving`] says which.

use voyado_webhooks::EventEnvelope;

/// A JSON value that keeps numbers and strings exactly as written.
#[derive(Clone, Debug)]
pub enum Json {
    /// A number, `true`, `false` or `null`, as written.
    Lit(String),
    /// A string's text between the quotes, escapes kept.
    Str(String),
    Arr(Vec<Json>),
    /// Members in order; each key is its text between the quotes.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Reads well-formed JSON (a fixture); `None` otherwise.
    pub fn parse(text: &str) -> Option<Json> {
        let mut reader = Reader { text, at: 0 };
        let value = reader.value()?;
        reader.space();
        (reader.at == text.len()).then_some(value)
    }

    /// Compact JSON text.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Lit(text) => out.push_str(text),
            Json::Str(text) => {
                out.push('"');
                out.push_str(text);
                out.push('"');
            }
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str(key.clone()).write(out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    fn children(&self) -> Box<dyn Iterator<Item = (Option<&str>, &Json)> + '_> {
        match self {
            Json::Arr(items) => Box::new(items.iter().map(|item| (None, item))),
            Json::Obj(members) => Box::new(members.iter().map(|(k, v)| (Some(k.as_str()), v))),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn child_mut(&mut self, index: usize) -> Option<&mut Json> {
        match self {
            Json::Arr(items) => items.get_mut(index),
            Json::Obj(members) => members.get_mut(index).map(|(_, v)| v),
            _ => None,
        }
    }

    fn at_mut(&mut self, path: &[usize]) -> Option<&mut Json> {
        path.iter().try_fold(self, |node, &i| node.child_mut(i))
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        let text = self.text.get(start..self.at)?.to_owned();
        self.at += 1;
        Some(text)
    }

    /// The items of an array or members of an object, after the opening bracket.
    fn list<T>(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(close) {
                return Some(items);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn value(&mut self) -> Option<Json> {
        self.space();
        match self.peek()? {
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.at += 1;
                self.list(b']', Self::value).map(Json::Arr)
            }
            b'{' => {
                self.at += 1;
                let member = |r: &mut Self| Some((r.string()?, r.eat(b':').then(|| r.value())??));
                self.list(b'}', member).map(Json::Obj)
            }
            _ => {
                let start = self.at;
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
                    self.at += 1;
                }
                (self.at > start).then(|| Json::Lit(self.text[start..self.at].to_owned()))
            }
        }
    }
}

/// The envelope's fields, each as its names normalized (ASCII lowercase, no `_`
/// or `-`).
const ENVELOPE: &[&[&str]] = &[
    &["eventtype"],
    &["id", "eventid"],
    &["tenant"],
    &["isencrypted"],
    &["payload"],
];

/// A typed event's payload fields, as in [`ENVELOPE`]; empty for other events.
fn payload_fields(event_type: &str) -> &'static [&'static [&'static str]] {
    match event_type.to_ascii_lowercase().as_str() {
        "contact.acceptsemail.changed" | "contact.acceptssms.changed" | "contact.acceptspostal.changed" => &[
            &["contactid"],
            &[
                "accepts",
                "value",
                "newvalue",
                "acceptsemail",
                "acceptssms",
                "acceptspostal",
            ],
        ],
        "loyalty.addpoints" => &[
            &["amount"],
            &["contactid"],
            &["pointdefinitionid"],
            &["source"],
            &["description"],
            &["userid"],
            &["username"],
            &["reason"],
            &["sourceid"],
        ],
        "point.balance.updated" => &[
            &["balance"],
            &["contactid"],
            &["accountid"],
            &["definitionid"],
            &["balanceexpires"],
        ],
        "reward.voucher.created" => &[
            &["amount"],
            &["contactid"],
            &["currency"],
            &["id"],
            &["uniquecode"],
            &["validfrom"],
            &["validto"],
        ],
        _ => &[],
    }
}

fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A value in the tree: the `index`th child of the node at `parent`.
struct Site {
    parent: Vec<usize>,
    index: usize,
    key: Option<String>,
    /// A member of the envelope or of a typed payload, under a name this crate
    /// reads as one of its fields.
    known: bool,
    /// That field has no other member in the same object.
    unique: bool,
}

fn sites(root: &Json) -> Vec<Site> {
    let event_type = root
        .children()
        .find_map(|(key, value)| match (key.map(normalize), value) {
            (Some(key), Json::Str(name)) if key == "eventtype" => Some(name.clone()),
            _ => None,
        });
    let payload = payload_fields(event_type.as_deref().unwrap_or(""));
    let mut out = Vec::new();
    collect(root, &mut Vec::new(), Some(ENVELOPE), payload, &mut out);
    out
}

fn collect(
    node: &Json,
    path: &mut Vec<usize>,
    fields: Option<&[&[&str]]>,
    payload: &'static [&'static [&'static str]],
    out: &mut Vec<Site>,
) {
    let group = |key: Option<&str>| {
        let key = normalize(key?);
        fields?.iter().position(|names| names.contains(&key.as_str()))
    };
    let keys: Vec<Option<&str>> = node.children().map(|(key, _)| key).collect();
    for (index, (key, value)) in node.children().enumerate() {
        let field = group(key);
        out.push(Site {
            parent: path.clone(),
            index,
            key: key.map(str::to_owned),
            known: field.is_some(),
            unique: field.is_some() && keys.iter().filter(|&&k| group(k) == field).count() == 1,
        });
        let inner = (path.is_empty() && field == Some(4) && !payload.is_empty()).then_some(payload);
        path.push(index);
        collect(value, path, inner, payload, out);
        path.pop();
    }
}

/// Reads choices from the driving bytes; `None` once they run out.
struct Choices<'a>(std::slice::Iter<'a, u8>);

impl Choices<'_> {
    fn below(&mut self, n: usize) -> Option<usize> {
        let high = usize::from(*self.0.next()?);
        let low = usize::from(self.0.next().copied().unwrap_or(0));
        Some(((high << 8) | low) % n.max(1))
    }
}

/// Replacement values that may change the meaning, or break the delivery.
const ODD_VALUES: &[&str] = &[
    "null",
    "\"\"",
    "true",
    "0",
    "-0",
    "-0.0",
    "1e400",
    "-1e-400",
    "0.1e1",
    "1E+2",
    "12.5e-3",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "0.0000000000000000000000000001",
    "0.00000000000000000000000000001",
    "1.0000000000000000000000000000",
    "\"1e5\"",
    "\" 12 \"",
    "\"12,5\"",
    "\"NaN\"",
    "\"9999-12-31T23:59:59.999999999+23:59\"",
    "\"-0001-01-01T00:00:00Z\"",
    "\"2024-02-30T00:00:00Z\"",
    "\"2024-01-01T24:00:00Z\"",
    "\"2024-01-01T00:00:00+24:00\"",
    "\"\\u0000\\ud800\\\"\\n\"",
    "\"é😀\"",
    "{}",
    "[]",
    "{\"payload\":{}}",
];

const EVENT_TYPES: &[&str] = &[
    "contact.acceptsEmail.changed",
    "contact.acceptsSms.changed",
    "contact.acceptsPostal.changed",
    "loyalty.addPoints",
    "point.balance.updated",
    "reward.voucher.created",
    "contact.created",
    "",
];

const KEYS: &[&str] = &[
    "eventType",
    "id",
    "eventId",
    "tenant",
    "isEncrypted",
    "payload",
    "contactId",
    "amount",
    "Amount",
    "balance",
    "accepts",
    "validTo",
    "",
    "zz",
    "\\u0069d",
];

/// A mutated fixture.
pub struct Mutated {
    /// The fixture as compact JSON, before any mutation.
    pub baseline: String,
    /// The mutated body.
    pub body: Vec<u8>,
    /// Every mutation kept the delivery's meaning: `body` must parse to the same
    /// event as `baseline`.
    pub preserving: bool,
}

/// A fixture read once, to mutate many times.
pub struct Fixture {
    tree: Json,
    baseline: String,
}

impl Fixture {
    /// Reads `text` (well-formed JSON).
    pub fn new(text: &str) -> Option<Fixture> {
        let tree = Json::parse(text)?;
        let mut baseline = String::new();
        tree.write(&mut baseline);
        Some(Fixture { tree, baseline })
    }

    /// A copy mutated as `choices` direct.
    pub fn mutate(&self, choices: &[u8]) -> Mutated {
        mutate_tree(self.tree.clone(), self.baseline.clone(), choices)
    }
}

fn mutate_tree(mut root: Json, baseline: String, choices: &[u8]) -> Mutated {
    let mut choices = Choices(choices.iter());
    let mut preserving = true;
    let mut cut = None;
    let mut insert = None;
    while let Some(op) = choices.below(16) {
        let sites = sites(&root);
        let Some(site) = choices.below(sites.len()).and_then(|i| sites.get(i)) else {
            break;
        };
        // A mutation that runs out of choices changes nothing and ends the run.
        let Some(keeps) = apply(&mut root, site, op, &mut choices) else {
            break;
        };
        preserving &= keeps;
        match op {
            13 => cut = choices.below(usize::MAX).or(cut),
            14 => insert = choices.below(usize::MAX).zip(choices.below(256)).or(insert),
            _ => {}
        }
    }
    let mut text = String::new();
    root.write(&mut text);
    let mut body = text.into_bytes();
    if let Some((at, byte)) = insert {
        body.insert(at % (body.len() + 1), byte as u8);
    }
    if let Some(at) = cut {
        body.truncate(at % (body.len() + 1));
    }
    Mutated {
        baseline,
        body,
        preserving,
    }
}

/// Applies mutation `op` at `site`; returns whether the meaning is kept.
fn apply(root: &mut Json, site: &Site, op: usize, choices: &mut Choices) -> Option<bool> {
    let parent = root.at_mut(&site.parent)?;
    // A field's second member may be kept in `extra` as written.
    let preserving = site.known && site.unique;
    Some(match op {
        0 => {
            let Json::Obj(members) = parent else {
                return Some(true);
            };
            let key = &mut members.get_mut(site.index)?.0;
            *key = recase(key, choices.below(7)?);
            preserving
        }
        1 => {
            let value = parent.child_mut(site.index)?;
            if let Json::Lit(text) = value {
                if text != "null" {
                    *value = Json::Str(text.clone());
                }
            }
            preserving
        }
        2 => {
            let value = parent.child_mut(site.index)?;
            if let Json::Str(text) = value {
                let number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
                    && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
                if number {
                    *value = Json::Lit(text.clone());
                }
            }
            preserving
        }
        3 => {
            if let Json::Str(text) = parent.child_mut(site.index)? {
                if let Some(rewritten) = rewrite_timestamp(text, choices) {
                    *text = rewritten;
                }
            }
            preserving
        }
        4 | 12 => {
            let Json::Obj(members) = parent else {
                return Some(true);
            };
            let to = choices.below(members.len())?;
            let member = members.remove(site.index);
            members.insert(to, member);
            // Only a payload field may move freely: in the envelope, which of two
            // ids comes first, or whether the payload comes before `isEncrypted`,
            // matters.
            op == 4 && preserving && !site.parent.is_empty()
        }
        5 => {
            let value = parent.child_mut(site.index)?;
            let event_type =
                site.parent.is_empty() && site.key.as_deref().map(normalize).as_deref() == Some("eventtype");
            if let (true, Json::Str(name)) = (event_type, &mut *value) {
                let known = !payload_fields(name).is_empty();
                let upper = choices.below(2)? == 0;
                *name = if upper {
                    name.to_ascii_uppercase()
                } else {
                    name.to_ascii_lowercase()
                };
                return Some(known);
            }
            true
        }
        6 => {
            match parent {
                Json::Obj(members) => {
                    members.remove(site.index);
                }
                Json::Arr(items) => {
                    items.remove(site.index);
                }
                _ => {}
            }
            false
        }
        7 => {
            if let Json::Obj(members) = parent {
                let member = members.get(site.index)?.clone();
                let to = choices.below(members.len() + 1)?;
                members.insert(to, member);
            }
            false
        }
        8 => {
            let replacement = match choices.below(ODD_VALUES.len() + 3)? {
                i if i < ODD_VALUES.len() => Json::parse(ODD_VALUES[i])?,
                i if i == ODD_VALUES.len() => Json::Str("x".repeat(choices.below(10_000)?)),
                i if i == ODD_VALUES.len() + 1 => Json::Lit(format!("1.{}", "0".repeat(choices.below(200)?))),
                _ => {
                    let depth = choices.below(300)?;
                    let mut nested = Json::Arr(Vec::new());
                    for _ in 0..depth {
                        nested = Json::Arr(vec![nested]);
                    }
                    nested
                }
            };
            *parent.child_mut(site.index)? = replacement;
            false
        }
        9 => {
            let in_array = choices.below(2)? == 0;
            let value = parent.child_mut(site.index)?;
            let inner = std::mem::replace(value, Json::Lit("null".into()));
            *value = if in_array {
                Json::Arr(vec![inner])
            } else {
                Json::Obj(vec![("v".into(), inner)])
            };
            false
        }
        10 | 11 => {
            let Json::Obj(members) = parent else {
                return Some(false);
            };
            let key = KEYS[choices.below(KEYS.len())?].to_owned();
            if op == 10 {
                let value = Json::parse(ODD_VALUES[choices.below(ODD_VALUES.len())?])?;
                members.insert(site.index, (key, value));
            } else {
                members.get_mut(site.index)?.0 = key;
            }
            false
        }
        15 => {
            let name = EVENT_TYPES[choices.below(EVENT_TYPES.len())?];
            *parent.child_mut(site.index)? = Json::Str(name.into());
            false
        }
        // 13 and 14 work on the text, once it is written.
        _ => false,
    })
}

/// `key` in one of seven casings; all match the same field.
fn recase(key: &str, style: usize) -> String {
    let mut words: Vec<String> = Vec::new();
    for c in key.chars() {
        match c {
            '_' | '-' => words.push(String::new()),
            c if c.is_ascii_uppercase() || words.is_empty() => words.push(c.to_ascii_lowercase().to_string()),
            c => words.last_mut().into_iter().for_each(|w| w.push(c)),
        }
    }
    words.retain(|w| !w.is_empty());
    let capital = |w: &String| {
        let mut chars = w.chars();
        chars
            .next()
            .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    };
    match style {
        0 => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.clone() } else { capital(w) })
            .collect(),
        1 => words.iter().map(capital).collect(),
        2 => words.join("_"),
        3 => words.join("-"),
        4 => words.join("_").to_ascii_uppercase(),
        5 => words.concat(),
        _ => words.concat().to_ascii_uppercase(),
    }
}

/// An RFC 3339 timestamp in another form the crate reads as the same instant and
/// offset: `t` or a space for `T`, more fraction digits, `z`, `+00:00`,
/// `+0000`, `+00` or nothing for `Z`, `±HHMM` or `±HH` for `±HH:MM`.
fn rewrite_timestamp(text: &str, choices: &mut Choices) -> Option<String> {
    let bytes = text.as_bytes();
    let shape = bytes.len() >= 20
        && bytes.get(4) == Some(&b'-')
        && bytes.get(10) == Some(&b'T')
        && bytes.get(13) == Some(&b':')
        && bytes.get(..4)?.iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    let (date, time) = text.split_at(10);
    let time = &time[1..];
    let (clock, offset) = match time.find(['Z', '+', '-']) {
        Some(at) => time.split_at(at),
        None => return None,
    };
    let separator = ["T", "t", " "][choices.below(3)?];
    let zeros = "0".repeat(choices.below(4)?);
    let clock = match clock.contains('.') {
        true => format!("{clock}{zeros}"),
        false if zeros.is_empty() => clock.to_owned(),
        false => format!("{clock}.{zeros}"),
    };
    let offset = match offset {
        "Z" => ["Z", "z", "+00:00", "+0000", "+00", ""][choices.below(6)?].to_owned(),
        _ if offset.len() == 6 && offset.ends_with(":00") && choices.below(2)? == 0 => offset[..3].to_owned(),
        _ if offset.len() == 6 && choices.below(2)? == 0 => offset.replace(':', ""),
        _ => offset.to_owned(),
    };
    Some(format!("{date}{separator}{clock}{offset}"))
}

/// The properties every mutated body must have: it parses to an event or to a
/// one-line error naming a field or a position; a parsed event survives a
/// serialize/parse round trip unchanged; and a body whose meaning was kept
/// parses to the same event as the unmutated fixture.
pub fn check(mutated: &Mutated) {
    match EventEnvelope::from_slice(&mutated.body) {
        Ok(event) => {
            assert_round_trips(&event);
            if mutated.preserving {
                let expected = EventEnvelope::from_slice(mutated.baseline.as_bytes()).unwrap();
                assert_eq!(
                    event,
                    expected,
                    "{} changed the meaning of {}",
                    String::from_utf8_lossy(&mutated.body),
                    mutated.baseline
                );
            }
        }
        Err(error) => {
            assert!(
                !mutated.preserving,
                "{} was refused: {error}",
                String::from_utf8_lossy(&mutated.body)
            );
            assert_explains(&error);
        }
    }
}

/// Whatever was kept as JSON text (`extra`, a raw payload) is within the depth
/// serde_json reads.
pub fn assert_kept_values_read_back(event: &EventEnvelope) {
    let mut kept: Vec<&str> = event.extra().iter().map(|(_, v)| v.get()).collect();
    kept.extend(
        event
            .payload_extra()
            .into_iter()
            .flat_map(|e| e.iter())
            .map(|(_, v)| v.get()),
    );
    kept.extend(event.raw_payload().map(|p| p.get()));
    // serde_json's raw capture keeps what its full reader refuses for another
    // reason (a lone surrogate escape such as `"\ud800"`): kept verbatim, as
    // received. Depth is the limit this crate guarantees.
    for text in kept {
        if let Err(error) = serde_json::from_str::<serde_json::Value>(text) {
            assert!(
                !error.to_string().contains("recursion limit"),
                "kept {text:.80} is too deep to read back: {error}"
            );
        }
    }
}

/// `parse(serialize(event)) == event`, serializing again gives the same text,
/// and every kept value reads back.
pub fn assert_round_trips(event: &EventEnvelope) {
    assert_kept_values_read_back(event);
    let written = serde_json::to_string(event).unwrap();
    let again = EventEnvelope::from_slice(written.as_bytes())
        .unwrap_or_else(|e| panic!("{written} does not parse back: {e}"));
    assert_eq!(&again, event, "{written}");
    assert_eq!(serde_json::to_string(&again).unwrap(), written);
}

/// An error's message is one non-empty line, and names the field (by its path),
/// the position (line and column), or the body as a whole.
pub fn assert_explains(error: &voyado_webhooks::ParseError) {
    use voyado_webhooks::ParseErrorKind;
    let message = error.to_string();
    assert!(!message.trim().is_empty(), "{error:?}");
    assert!(!message.contains(['\n', '\r']), "not one line: {message:?}");
    let names_it = match (error.path(), error.kind()) {
        (_, ParseErrorKind::Syntax { line, column, .. }) => {
            message.contains(&format!("line {line} column {column}"))
        }
        (Some(path), _) => {
            let escaped: String = path
                .chars()
                .map(|c| {
                    if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                        c.escape_debug().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            message.contains(&escaped)
        }
        (None, ParseErrorKind::InvalidValue { expected, .. }) => *expected == "a JSON object",
        (None, _) => false,
    };
    assert!(names_it, "names no field or position: {message:?}");
}
