//! A deterministic generator of random Avro schemas, datums for them (as JSON values, in the
//! forms the codec accepts), reader schemas they evolve into, and broken inputs.
//!
//! It depends only on `serde_json`, so the same corpus can drive any implementation of the
//! codec (the equivalence tests compare the text paths with the value paths).

#![allow(dead_code)]

use serde_json::{Map, Value, json};

/// xorshift64*: small, deterministic, good enough to pick shapes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const LONG_LOGICAL: &[&str] = &[
    "time-micros",
    "timestamp-millis",
    "timestamp-micros",
    "timestamp-nanos",
    "local-timestamp-millis",
    "local-timestamp-micros",
    "local-timestamp-nanos",
];

const STRINGS: &[&str] = &[
    "",
    "plain",
    "with \"quotes\" and \\ backslash",
    "tab\tnewline\ncr\r",
    "\u{0}\u{1}\u{1f}\u{7f}",
    "é ☃ 😀 中文",
    "</script>",
    "\u{2028}\u{2029}",
    "NaN",
    "Infinity",
    "12.34",
    "2024-01-01",
];

const KEYS: &[&str] = &["a", "b b", "é", "\"q\"", "", "k1", "_x", "9z", "a.b", "😀"];

/// A random Avro schema as JSON, and the generator state for named types.
#[derive(Debug, Default)]
pub struct SchemaGen {
    names: usize,
}

impl SchemaGen {
    fn name(&mut self, rng: &mut Rng) -> (String, Option<String>) {
        self.names += 1;
        let ns = match rng.below(3) {
            0 => Some("ns.one".to_owned()),
            1 => Some(format!("ns{}", self.names % 3)),
            _ => None,
        };
        (format!("T{}", self.names), ns)
    }

    fn named(&mut self, rng: &mut Rng, mut body: Map<String, Value>) -> Value {
        let (name, ns) = self.name(rng);
        body.insert("name".to_owned(), json!(name));
        if let Some(ns) = ns {
            body.insert("namespace".to_owned(), json!(ns));
        }
        Value::Object(body)
    }

    /// Any type but a union (the kinds of union branches are chosen by [`Self::union`]).
    pub fn non_union(&mut self, rng: &mut Rng, depth: usize) -> Value {
        let leaf = depth >= 3;
        match rng.below(if leaf { 12 } else { 16 }) {
            0 => json!("null"),
            1 => json!("boolean"),
            2 => json!("int"),
            3 => json!("long"),
            4 => json!("float"),
            5 => json!("double"),
            6 | 7 => json!("string"),
            8 => json!("bytes"),
            9 => self.logical(rng),
            10 => {
                let n = 1 + rng.below(3);
                let symbols: Vec<String> = (0..n).map(|i| format!("S{i}")).collect();
                let mut m = Map::new();
                m.insert("type".to_owned(), json!("enum"));
                m.insert("symbols".to_owned(), json!(symbols));
                if rng.chance(2) {
                    m.insert("default".to_owned(), json!("S0"));
                }
                self.named(rng, m)
            }
            11 => {
                let mut m = Map::new();
                m.insert("type".to_owned(), json!("fixed"));
                m.insert("size".to_owned(), json!(rng.below(5)));
                self.named(rng, m)
            }
            12 => json!({"type": "array", "items": self.any(rng, depth + 1)}),
            13 => json!({"type": "map", "values": self.any(rng, depth + 1)}),
            _ => self.record(rng, depth + 1),
        }
    }

    fn logical(&mut self, rng: &mut Rng) -> Value {
        match rng.below(8) {
            0 => json!({"type": "int", "logicalType": "date"}),
            1 => json!({"type": "int", "logicalType": "time-millis"}),
            2 => json!({"type": "long", "logicalType": *rng.pick(LONG_LOGICAL)}),
            3 => json!({"type": "string", "logicalType": "uuid"}),
            4 => json!({"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}),
            5 => {
                let mut m = Map::new();
                m.insert("type".to_owned(), json!("fixed"));
                m.insert("size".to_owned(), json!(6));
                m.insert("logicalType".to_owned(), json!("decimal"));
                m.insert("precision".to_owned(), json!(12));
                m.insert("scale".to_owned(), json!(3));
                self.named(rng, m)
            }
            6 => {
                let mut m = Map::new();
                m.insert("type".to_owned(), json!("fixed"));
                m.insert("size".to_owned(), json!(12));
                m.insert("logicalType".to_owned(), json!("duration"));
                self.named(rng, m)
            }
            _ => json!({"type": "long", "logicalType": "timestamp-millis"}),
        }
    }

    /// A type, sometimes a union.
    pub fn any(&mut self, rng: &mut Rng, depth: usize) -> Value {
        if rng.chance(3) {
            self.union(rng, depth)
        } else {
            self.non_union(rng, depth)
        }
    }

    /// A union of 1..4 branches of distinct kinds.
    pub fn union(&mut self, rng: &mut Rng, depth: usize) -> Value {
        let n = 1 + rng.below(4);
        let mut branches: Vec<Value> = Vec::new();
        let mut kinds: Vec<String> = Vec::new();
        if rng.chance(2) {
            branches.push(json!("null"));
            kinds.push("null".to_owned());
        }
        for _ in 0..n * 3 {
            if branches.len() >= n {
                break;
            }
            let b = self.non_union(rng, depth);
            let kind = union_kind(&b);
            if !kinds.contains(&kind) {
                kinds.push(kind);
                branches.push(b);
            }
        }
        if branches.is_empty() {
            branches.push(json!("string"));
        }
        Value::Array(branches)
    }

    pub fn record(&mut self, rng: &mut Rng, depth: usize) -> Value {
        let n = rng.below(if depth > 2 { 3 } else { 6 });
        let mut fields = Vec::new();
        for i in 0..n {
            let ty = self.any(rng, depth);
            let mut f = Map::new();
            f.insert("name".to_owned(), json!(format!("f{i}")));
            if rng.chance(3) {
                let d = default_for(rng, &ty);
                f.insert("default".to_owned(), d);
            }
            f.insert("type".to_owned(), ty);
            fields.push(Value::Object(f));
        }
        let mut m = Map::new();
        m.insert("type".to_owned(), json!("record"));
        m.insert("fields".to_owned(), Value::Array(fields));
        self.named(rng, m)
    }
}

/// What makes two union branches clash: the type name (the full name for named types).
fn union_kind(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
            match ty {
                "record" | "enum" | "fixed" => format!(
                    "{}.{}",
                    o.get("namespace").and_then(Value::as_str).unwrap_or(""),
                    o.get("name").and_then(Value::as_str).unwrap_or("")
                ),
                other => other.to_owned(),
            }
        }
        _ => String::new(),
    }
}

fn type_name(t: &Value) -> String {
    match t {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Value::Array(_) => "union".to_owned(),
        _ => String::new(),
    }
}

/// The union branch name of a type (full name of named types).
fn branch_name(t: &Value) -> String {
    match t {
        Value::Object(o) if matches!(type_name(t).as_str(), "record" | "enum" | "fixed") => {
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            match o.get("namespace").and_then(Value::as_str) {
                Some(ns) => format!("{ns}.{name}"),
                None => name.to_owned(),
            }
        }
        _ => type_name(t),
    }
}

fn latin1(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(*rng.pick(&[0u8, 1, 0x22, 0x5c, 0x41, 0x7f, 0x80, 0xe9, 0xff])))
        .collect()
}

/// A schema default for `t` (the first branch of a union; underlying forms of logical types).
pub fn default_for(rng: &mut Rng, t: &Value) -> Value {
    let mut g = DatumGen {
        tagged: false,
        friendly: false,
        default_mode: true,
    };
    g.datum(rng, t)
}

/// Generates datums as JSON values.
#[derive(Debug, Clone, Copy)]
pub struct DatumGen {
    /// Unions as `{"branch": value}` (else plain).
    pub tagged: bool,
    /// Logical types in their friendly textual forms where there are some.
    pub friendly: bool,
    /// For schema defaults: unions take their first branch, plain.
    pub default_mode: bool,
}

impl DatumGen {
    pub fn datum(&mut self, rng: &mut Rng, t: &Value) -> Value {
        match t {
            Value::Array(branches) => {
                let b = if self.default_mode {
                    &branches[0]
                } else {
                    rng.pick(branches)
                };
                let v = self.datum(rng, b);
                if self.tagged && !self.default_mode && type_name(b) != "null" {
                    let mut m = Map::new();
                    m.insert(branch_name(b), v);
                    Value::Object(m)
                } else {
                    v
                }
            }
            Value::String(s) => self.primitive(rng, s),
            Value::Object(o) => {
                let logical = o.get("logicalType").and_then(Value::as_str);
                let ty = type_name(t);
                if let Some(l) = logical
                    && let Some(v) = self.logical(rng, l, o)
                {
                    return v;
                }
                match ty.as_str() {
                    "enum" => {
                        let syms = o.get("symbols").and_then(Value::as_array);
                        syms.map_or(json!("S0"), |s| rng.pick(s).clone())
                    }
                    "fixed" => {
                        let n = o.get("size").and_then(Value::as_u64).unwrap_or(0);
                        json!(latin1(rng, usize::try_from(n).unwrap_or(0)))
                    }
                    "array" => {
                        let items = o.get("items").cloned().unwrap_or(Value::Null);
                        let n = if self.default_mode { 0 } else { rng.below(4) };
                        Value::Array((0..n).map(|_| self.datum(rng, &items)).collect())
                    }
                    "map" => {
                        let values = o.get("values").cloned().unwrap_or(Value::Null);
                        let mut m = Map::new();
                        if !self.default_mode {
                            for _ in 0..rng.below(4) {
                                let k = (*rng.pick(KEYS)).to_owned();
                                let v = self.datum(rng, &values);
                                m.insert(k, v);
                            }
                        }
                        Value::Object(m)
                    }
                    "record" => {
                        let mut m = Map::new();
                        let fields = o.get("fields").and_then(Value::as_array);
                        for f in fields.into_iter().flatten() {
                            let name = f.get("name").and_then(Value::as_str).unwrap_or("");
                            if !self.default_mode && f.get("default").is_some() && rng.chance(3) {
                                continue;
                            }
                            let ft = f.get("type").cloned().unwrap_or(Value::Null);
                            m.insert(name.to_owned(), self.datum(rng, &ft));
                        }
                        Value::Object(m)
                    }
                    other => self.primitive(rng, other),
                }
            }
            _ => Value::Null,
        }
    }

    fn primitive(&mut self, rng: &mut Rng, t: &str) -> Value {
        match t {
            "null" => Value::Null,
            "boolean" => json!(rng.chance(2)),
            "int" => {
                let random = i64::from(rng.next() as i32);
                let choices = [
                    0i64,
                    1,
                    -1,
                    127,
                    128,
                    -65,
                    i64::from(i32::MAX),
                    i64::from(i32::MIN),
                    random,
                ];
                json!(*rng.pick(&choices))
            }
            "long" => {
                let random = rng.next() as i64;
                let choices = [0i64, -1, 9_007_199_254_740_993, i64::MAX, i64::MIN, random];
                json!(*rng.pick(&choices))
            }
            "float" => {
                let special = !self.default_mode && rng.chance(6);
                if special {
                    json!(*rng.pick(&["NaN", "Infinity", "-Infinity"]))
                } else {
                    let v = *rng.pick(&[0.0f64, 0.1, -1.5, 3.4e38, 1e-45, 16_777_217.0, 1e10]);
                    json!(v)
                }
            }
            "double" => {
                let special = !self.default_mode && rng.chance(6);
                if special {
                    json!(*rng.pick(&["NaN", "Infinity", "-Infinity"]))
                } else {
                    let bits = f64::from_bits(rng.next());
                    let v = *rng.pick(&[
                        0.0f64,
                        -0.0,
                        0.1,
                        1e308,
                        5e-324,
                        1.0 / 3.0,
                        1e21,
                        123_456_789.0,
                    ]);
                    json!(if bits.is_finite() && rng.chance(3) {
                        bits
                    } else {
                        v
                    })
                }
            }
            "string" => json!(*rng.pick(STRINGS)),
            "bytes" => {
                let n = rng.below(5);
                json!(latin1(rng, n))
            }
            _ => Value::Null,
        }
    }

    fn logical(&mut self, rng: &mut Rng, l: &str, o: &Map<String, Value>) -> Option<Value> {
        let friendly = self.friendly && !self.default_mode && rng.chance(2);
        Some(match (l, friendly) {
            ("date", true) => json!(*rng.pick(&["2024-02-29", "1970-01-01", "1969-12-31"])),
            ("date", false) => json!(*rng.pick(&[0, 19_723, -1])),
            ("time-millis", true) => json!("12:34:56.789"),
            ("time-millis", false) => json!(45_296_789),
            ("time-micros", true) => json!("00:00:00.000001"),
            ("timestamp-millis" | "timestamp-micros" | "timestamp-nanos", true) => {
                json!(*rng.pick(&["2024-01-01T00:00:00Z", "2024-01-01T02:00:00.123+02:00"]))
            }
            (
                "local-timestamp-millis" | "local-timestamp-micros" | "local-timestamp-nanos",
                true,
            ) => {
                json!("2024-01-01T00:00:00.5")
            }
            ("uuid", _) => json!("123e4567-e89b-12d3-a456-426614174000"),
            ("decimal", _) => {
                let is_fixed = o.get("type").and_then(Value::as_str) == Some("fixed");
                match (friendly, is_fixed) {
                    (true, _) => json!(*rng.pick(&["12.34", "-0.01", "0.5"])),
                    (false, true) => json!(latin1(rng, 6)),
                    (false, false) => {
                        let n = rng.below(4);
                        json!(latin1(rng, n))
                    }
                }
            }
            ("duration", true) => json!({"months": 1, "days": 2, "millis": 3}),
            ("duration", false) => json!(latin1(rng, 12)),
            _ => return None,
        })
    }
}

/// A reader schema for data written with `w`: record fields permuted, one dropped, one added
/// with a default, some types promoted, enums with an extra symbol, some types wrapped in a
/// union with null.
pub fn evolve(rng: &mut Rng, w: &Value) -> Value {
    match w {
        Value::String(s) => {
            let promoted = match s.as_str() {
                "int" => *rng.pick(&["int", "long", "float", "double"]),
                "long" => *rng.pick(&["long", "float", "double"]),
                "float" => *rng.pick(&["float", "double"]),
                "string" => *rng.pick(&["string", "bytes"]),
                "bytes" => *rng.pick(&["bytes", "string"]),
                other => other,
            };
            let t = json!(promoted);
            if promoted != "null" && rng.chance(6) {
                json!(["null", t])
            } else {
                t
            }
        }
        Value::Array(branches) => {
            let mut b: Vec<Value> = branches.iter().map(|b| evolve_branch(rng, b)).collect();
            if b.len() > 1 && rng.chance(3) {
                b.reverse();
            }
            Value::Array(b)
        }
        Value::Object(o) => {
            let mut o = o.clone();
            match type_name(w).as_str() {
                "record" => {
                    let mut fields: Vec<Value> = o
                        .get("fields")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for f in &mut fields {
                        if let Some(t) = f.get("type").cloned() {
                            let nt = evolve(rng, &t);
                            // A default must still fit the (evolved) type: regenerate it.
                            if f.get("default").is_some() {
                                let d = default_for(rng, &nt);
                                f["default"] = d;
                            }
                            f["type"] = nt;
                        }
                    }
                    if !fields.is_empty() && rng.chance(3) {
                        let i = rng.below(fields.len());
                        fields.remove(i);
                    }
                    if fields.len() > 1 && rng.chance(2) {
                        fields.reverse();
                    }
                    if rng.chance(2) {
                        let t = json!(*rng.pick(&["long", "string", "double"]));
                        let d = default_for(rng, &t);
                        fields.push(json!({"name": "added", "type": t, "default": d}));
                    }
                    o.insert("fields".to_owned(), Value::Array(fields));
                }
                "enum" => {
                    if let Some(Value::Array(s)) = o.get_mut("symbols")
                        && rng.chance(2)
                    {
                        s.push(json!("EXTRA"));
                    }
                }
                "array" => {
                    if let Some(items) = o.get("items").cloned() {
                        o.insert("items".to_owned(), evolve_no_union(rng, &items));
                    }
                }
                "map" => {
                    if let Some(values) = o.get("values").cloned() {
                        o.insert("values".to_owned(), evolve_no_union(rng, &values));
                    }
                }
                _ => {}
            }
            Value::Object(o)
        }
        other => other.clone(),
    }
}

/// [`evolve`] for a union branch (which can't become a union itself).
fn evolve_branch(rng: &mut Rng, b: &Value) -> Value {
    match evolve(rng, b) {
        Value::Array(mut inner) => inner.pop().unwrap_or(Value::Null),
        other => other,
    }
}

fn evolve_no_union(rng: &mut Rng, t: &Value) -> Value {
    if t.is_array() {
        evolve(rng, t)
    } else {
        evolve_branch(rng, t)
    }
}

/// Broken variants of a valid JSON datum's text and value: wrong types, missing and unknown
/// fields, repeated keys, truncated text.
pub fn broken_json(rng: &mut Rng, datum: &Value) -> Vec<String> {
    let text = datum.to_string();
    let mut out = vec![
        "true".to_owned(),
        "\"x\"".to_owned(),
        "[1,".to_owned(),
        "{}".to_owned(),
        "1.5".to_owned(),
    ];
    if !text.is_empty() {
        let cut = rng.below(text.len());
        if text.is_char_boundary(cut) {
            out.push(text[..cut].to_owned());
        }
    }
    if let Value::Object(m) = datum {
        let mut unknown = m.clone();
        unknown.insert("zz_unknown".to_owned(), json!(1));
        out.push(Value::Object(unknown).to_string());
        if let Some(k) = m.keys().next() {
            let mut missing = m.clone();
            missing.remove(k);
            out.push(Value::Object(missing).to_string());
            let mut wrong = m.clone();
            wrong.insert(k.clone(), json!({"nested": [true]}));
            out.push(Value::Object(wrong).to_string());
            // the first key again at the end, with another value, and with the same value
            let body = text.trim_end_matches('}');
            let sep = if m.is_empty() { "" } else { "," };
            let key = serde_json::to_string(k).unwrap_or_default();
            out.push(format!("{body}{sep}{key}:null}}"));
            out.push(format!("{body}{sep}{key}:{}}}", m[k]));
        }
    }
    out
}

/// Broken variants of Avro binary: every truncation, flipped bits, inserted and appended bytes.
pub fn broken_avro(rng: &mut Rng, avro: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..avro.len()).map(|n| avro[..n].to_vec()).collect();
    for _ in 0..4 {
        let mut b = avro.to_vec();
        if !b.is_empty() {
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
        }
        out.push(b);
        let mut c = avro.to_vec();
        let at = rng.below(c.len() + 1);
        c.insert(at, *rng.pick(&[0x01u8, 0x02, 0x7f, 0x80, 0xff, 0x06]));
        out.push(c);
    }
    let mut longer = avro.to_vec();
    longer.push(0);
    out.push(longer);
    out
}
