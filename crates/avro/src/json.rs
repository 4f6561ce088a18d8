//! A small JSON model that reads and writes JSON the way Jackson does inside Java Avro.
//!
//! Java Avro parses schema text with Jackson (comments allowed, duplicate keys resolved as
//! "last value wins, first position kept", anything after the first complete value ignored) and
//! writes JSON back with Jackson's generator (compact, `\u00XX` escapes in upper case, doubles
//! printed with Java's `Double.toString`, non-finite doubles quoted). Matching those details
//! byte for byte is what makes [`crate::schema::Schema::canonical_string`] identical to what
//! Confluent Schema Registry stores, so this crate carries its own JSON reader and writer instead
//! of relying on a general-purpose JSON library.
//!
//! The reader is recursive but bounded: nesting deeper than [`MAX_DEPTH`] is rejected with an
//! error instead of risking a stack overflow.

use std::collections::HashMap;
use std::fmt;

/// The deepest nesting of arrays and objects accepted by [`Json::parse`].
pub const MAX_DEPTH: usize = 256;

/// A JSON value, as Jackson's tree model holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, typed the way Jackson types number nodes.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; keys keep their first position.
    Object(Object),
}

/// A JSON number, typed the way Jackson types number nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Number {
    /// An integral literal that fits in an `i64` (Jackson `IntNode` / `LongNode`).
    Int(i64),
    /// An integral literal too large for an `i64` (Jackson `BigIntegerNode`), as decimal digits.
    BigInt(String),
    /// A literal with a fraction or an exponent (Jackson `DoubleNode`).
    Double(f64),
    /// A single-precision value (Jackson `FloatNode`); produced only by conversions.
    Float(f32),
}

impl Number {
    /// Whether the number is integral (Jackson `isIntegralNumber`).
    pub fn is_integral(&self) -> bool {
        matches!(self, Number::Int(_) | Number::BigInt(_))
    }

    /// The value as an `i32`, when it is an integral literal in range (Jackson `isInt`).
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Number::Int(v) => i32::try_from(*v).ok(),
            _ => None,
        }
    }

    /// The value as an `i64`, when it is an integral literal in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as an `f64` (possibly rounded).
    pub fn as_f64(&self) -> f64 {
        match self {
            // Rounding to the nearest double is the intent here.
            #[allow(clippy::cast_precision_loss)]
            Number::Int(v) => *v as f64,
            Number::BigInt(s) => s.parse().unwrap_or(f64::NAN),
            Number::Double(v) => *v,
            Number::Float(v) => f64::from(*v),
        }
    }
}

/// A JSON object that keeps its keys in insertion order.
///
/// Equality ignores key order, like Jackson's `ObjectNode.equals`. Small objects (almost all of
/// a schema's) are searched by scanning; past [`Object::SCAN_LIMIT`] keys an index by key keeps
/// every lookup and insertion constant-time, so an object of any size is read in linear time.
#[derive(Debug, Clone, Default)]
pub struct Object {
    entries: Vec<(String, Json)>,
    /// Key -> position in `entries`, once there are more than [`Object::SCAN_LIMIT`] entries.
    index: Option<HashMap<String, usize>>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|o| o == v))
    }
}

impl Object {
    /// Objects up to this many keys are searched by scanning.
    const SCAN_LIMIT: usize = 16;

    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.position(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key`; an existing key keeps its position and takes the new value.
    pub fn insert(&mut self, key: String, value: Json) {
        if let Some(slot) = self.position(&key).and_then(|i| self.entries.get_mut(i)) {
            slot.1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        } else if self.entries.len() >= Self::SCAN_LIMIT {
            let mut index: HashMap<String, usize> = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.entries.len());
            self.index = Some(index);
        }
        self.entries.push((key, value));
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, Json)> for Object {
    fn from_iter<T: IntoIterator<Item = (String, Json)>>(iter: T) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

/// Why a text is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// 1-based line of the offending character.
    pub line: usize,
    /// 1-based column (in characters) of the offending character.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// `Some(limit)` when the text nests deeper than the reader's limit.
    pub depth_limit: Option<usize>,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for JsonError {}

impl Json {
    /// Parses a complete JSON document: one value, then only whitespace or comments.
    pub fn parse(text: &str) -> Result<Json, JsonError> {
        let mut r = Reader::new(text);
        let v = r.document_value()?;
        r.skip_ws()?;
        if r.pos < r.bytes.len() {
            return Err(r.error("unexpected content after the JSON value"));
        }
        Ok(v)
    }

    /// Parses the first JSON value of `text` and ignores whatever follows it, as Jackson's
    /// `ObjectMapper.readTree(JsonParser)` (and so Java Avro's `Schema.Parser`) does.
    pub fn parse_first_value(text: &str) -> Result<Json, JsonError> {
        Reader::new(text).document_value()
    }

    /// [`Json::parse_first_value`] accepting at most `max_depth` levels of nesting (capped at
    /// [`MAX_DEPTH`]); deeper text is an error with [`JsonError::depth_limit`] set.
    pub fn parse_first_value_with_depth(text: &str, max_depth: usize) -> Result<Json, JsonError> {
        let mut r = Reader::new(text);
        r.max_depth = max_depth.min(MAX_DEPTH);
        r.document_value()
    }

    /// The string value, if this is a string (Jackson `textValue()`).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Json::Number(n) => Some(n),
            _ => None,
        }
    }

    /// Compact JSON exactly as Jackson's generator writes this tree.
    pub fn to_jackson_string(&self) -> String {
        let mut out = String::new();
        self.write_jackson(&mut out);
        out
    }

    /// Appends the compact Jackson rendering of this tree to `out`.
    pub fn write_jackson(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Number(n) => write_number(n, out),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_jackson(out);
                }
                out.push(']');
            }
            Json::Object(obj) => {
                out.push('{');
                for (i, (k, v)) in obj.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write_jackson(out);
                }
                out.push('}');
            }
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_jackson_string())
    }
}

fn write_number(n: &Number, out: &mut String) {
    match n {
        Number::Int(v) => out.push_str(&v.to_string()),
        Number::BigInt(s) => out.push_str(s),
        Number::Double(v) => {
            let s = java_double_to_string(*v);
            if v.is_finite() {
                out.push_str(&s);
            } else {
                // Jackson's QUOTE_NON_NUMERIC_NUMBERS (on by default).
                write_string(&s, out);
            }
        }
        Number::Float(v) => {
            let s = java_float_to_string(*v);
            if v.is_finite() {
                out.push_str(&s);
            } else {
                write_string(&s, out);
            }
        }
    }
}

/// Appends `s` as a JSON string literal with Jackson's escaping rules.
pub fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xF]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Splits the shortest round-trip representation of a finite, non-zero value into its decimal
/// digits and its scientific exponent (value = d.ddd × 10^exp).
fn shortest_digits(sci: &str) -> (bool, String, i32) {
    let (negative, rest) = match sci.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, sci),
    };
    let (mantissa, exp) = rest.split_once('e').unwrap_or((rest, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (negative, digits, exp.parse().unwrap_or(0))
}

fn java_format(negative: bool, digits: &str, exp: i32, plain: bool) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let digits = if digits.is_empty() { "0" } else { digits };
    if plain {
        if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            let zeros = usize::try_from(-exp - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}

/// Java's `Double.toString(double)`: shortest round-trip digits, plain notation for magnitudes
/// in `[1e-3, 1e7)`, computerized scientific notation (`1.0E10`) otherwise.
pub fn java_double_to_string(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    let (negative, digits, exp) = shortest_digits(&format!("{v:e}"));
    let plain = (1e-3..1e7).contains(&v.abs());
    java_format(negative, &digits, exp, plain)
}

/// Java's `Float.toString(float)`, the single-precision counterpart of
/// [`java_double_to_string`].
pub fn java_float_to_string(v: f32) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    let (negative, digits, exp) = shortest_digits(&format!("{v:e}"));
    let plain = (1e-3..1e7).contains(&v.abs());
    java_format(negative, &digits, exp, plain)
}

/// Java's `Double.valueOf(String)` for the decimal forms it accepts (surrounding whitespace,
/// a sign, `NaN`, `Infinity`, an optional `f`/`d` suffix). Hexadecimal literals are not
/// supported. Returns `None` where Java would throw `NumberFormatException`.
pub fn java_parse_double(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c <= ' ');
    let (negative, body) = if let Some(r) = t.strip_prefix('-') {
        (true, r)
    } else if let Some(r) = t.strip_prefix('+') {
        (false, r)
    } else {
        (false, t)
    };
    let value = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            if body.is_empty()
                || !body.bytes().any(|b| b.is_ascii_digit())
                || !body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if negative { -value } else { value })
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            max_depth: MAX_DEPTH,
        }
    }

    fn error(&self, message: impl Into<String>) -> JsonError {
        let upto = &self.text[..self.pos.min(self.text.len())];
        let line = upto.matches('\n').count() + 1;
        let column = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        JsonError {
            line,
            column,
            message: message.into(),
            depth_limit: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips whitespace and comments (Jackson's `ALLOW_COMMENTS`, which Avro enables).
    fn skip_ws(&mut self) -> Result<(), JsonError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => match self.bytes.get(self.pos + 1) {
                    Some(b'/') => {
                        while let Some(b) = self.peek() {
                            self.pos += 1;
                            if b == b'\n' || b == b'\r' {
                                break;
                            }
                        }
                    }
                    Some(b'*') => {
                        let start = self.pos;
                        self.pos += 2;
                        loop {
                            match self.peek() {
                                None => {
                                    self.pos = start;
                                    return Err(self.error("unterminated comment"));
                                }
                                Some(b'*') if self.bytes.get(self.pos + 1) == Some(&b'/') => {
                                    self.pos += 2;
                                    break;
                                }
                                Some(_) => self.pos += 1,
                            }
                        }
                    }
                    _ => return Err(self.error("unexpected character '/'")),
                },
                _ => return Ok(()),
            }
        }
    }

    fn document_value(&mut self) -> Result<Json, JsonError> {
        self.skip_ws()?;
        if self.peek().is_none() {
            return Err(self.error("no JSON value (empty text)"));
        }
        self.value(0)
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.skip_ws()?;
        match self.peek() {
            None => Err(self.error("unexpected end of text")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => Ok(Json::Number(self.number()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(_) => {
                let c = self.text[self.pos..].chars().next().unwrap_or('?');
                Err(self.error(format!("unexpected character '{c}'")))
            }
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, JsonError> {
        let end = self.pos + word.len();
        let followed_by_word = self
            .bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if self.bytes.get(self.pos..end) == Some(word.as_bytes()) && !followed_by_word {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.error("unrecognized token"))
        }
    }

    fn enter(&self, depth: usize) -> Result<(), JsonError> {
        if depth > self.max_depth {
            let mut e = self.error(format!(
                "JSON nesting deeper than {} levels is not accepted",
                self.max_depth
            ));
            e.depth_limit = Some(self.max_depth);
            Err(e)
        } else {
            Ok(())
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                None => return Err(self.error("unexpected end of text inside an array")),
                Some(_) => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut obj = Object::new();
        self.skip_ws()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Json::Object(obj));
        }
        loop {
            self.skip_ws()?;
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a double-quoted field name"));
            }
            let key = self.string()?;
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after a field name"));
            }
            self.pos += 1;
            let v = self.value(depth)?;
            obj.insert(key, v);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Json::Object(obj));
                }
                None => return Err(self.error("unexpected end of text inside an object")),
                Some(_) => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let chunk = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let s = std::str::from_utf8(chunk).map_err(|_| self.error("invalid \\u escape"))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{08}'),
                        b'f' => out.push('\u{0C}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.error("unpaired surrogate in \\u escape"))?;
                            out.push(c);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("unrecognized character escape"));
                        }
                    }
                }
                Some(_) => {
                    return Err(self.error("unescaped control character in a string"));
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Number, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 {
            return Err(self.error("expected a digit"));
        }
        if n > 1 && self.bytes[int_start] == b'0' {
            self.pos = int_start;
            return Err(self.error("leading zeroes are not allowed"));
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            integral = false;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after the decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integral = false;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        let lexeme = &self.text[start..self.pos];
        if integral {
            Ok(match lexeme.parse::<i64>() {
                Ok(v) => Number::Int(v),
                Err(_) => Number::BigInt(lexeme.to_owned()),
            })
        } else {
            lexeme
                .parse::<f64>()
                .map(Number::Double)
                .map_err(|_| self.error("invalid number"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        let cases = [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1.5e-3, "0.0015"),
            (1e-3, "0.001"),
            (1e-4, "1.0E-4"),
            (1e7, "1.0E7"),
            (9_999_999.0, "9999999.0"),
            (1.234_567_89e10, "1.23456789E10"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (123.456, "123.456"),
            (1e21, "1.0E21"),
        ];
        for (v, want) in cases {
            assert_eq!(java_double_to_string(v), want, "{v}");
        }
        assert_eq!(java_float_to_string(0.1), "0.1");
        assert_eq!(java_float_to_string(2.718_281_7), "2.7182817");
        assert_eq!(java_float_to_string(1e10), "1.0E10");
    }

    #[test]
    fn numbers_are_typed_like_jackson() {
        let v = Json::parse(r#"[1, -0, 1.50, 1e2, 12345678901234567890, -5]"#);
        assert_eq!(
            v.map(|v| v.to_jackson_string()),
            Ok("[1,0,1.5,100.0,12345678901234567890,-5]".to_owned())
        );
        assert_eq!(
            Json::parse("1e400").map(|v| v.to_jackson_string()),
            Ok("\"Infinity\"".to_owned())
        );
    }

    #[test]
    fn strings_escape_like_jackson() {
        let v = Json::String("a\"b\\c\n\u{1}/é".to_owned());
        assert_eq!(v.to_jackson_string(), "\"a\\\"b\\\\c\\n\\u0001/é\"");
        let parsed = Json::parse(r#""\ud83d\ude00 \u00e9""#);
        assert_eq!(parsed, Ok(Json::String("😀 é".to_owned())));
    }

    #[test]
    fn jackson_reader_rules() {
        assert!(Json::parse("/* c */ {\"a\": 1 // x\n}").is_ok());
        assert!(Json::parse("{\"a\":1,}").is_err());
        assert!(Json::parse("[01]").is_err());
        assert!(Json::parse("[1.]").is_err());
        assert!(Json::parse("'a'").is_err());
        assert!(Json::parse("\"a\tb\"").is_err());
        assert!(Json::parse("\"\\x\"").is_err());
        assert!(Json::parse("nul").is_err());
        assert!(Json::parse("").is_err());
        assert!(Json::parse("{} x").is_err());
        assert_eq!(
            Json::parse_first_value("{} x"),
            Ok(Json::Object(Object::new()))
        );
        // Duplicate keys: last value wins, first position kept.
        let v = Json::parse(r#"{"a":1,"b":2,"a":3}"#).map(|v| v.to_jackson_string());
        assert_eq!(v, Ok(r#"{"a":3,"b":2}"#.to_owned()));
    }

    #[test]
    fn depth_is_limited() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = Json::parse(&deep).err();
        assert!(err.is_some_and(|e| e.message.contains("nesting")));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Json::parse(&ok).is_ok());
    }

    #[test]
    fn java_double_parsing() {
        assert_eq!(java_parse_double(" 1.5 "), Some(1.5));
        assert_eq!(java_parse_double("2f"), Some(2.0));
        assert_eq!(java_parse_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(java_parse_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(java_parse_double("inf"), None);
        assert_eq!(java_parse_double("abc"), None);
        assert_eq!(java_parse_double(""), None);
    }
}
