//! The hostile inputs of issue 15, timed: the figures of docs/avro-limits.md.
//!
//!     cargo run --release -p tributary-avro --example budget_figures [case]
//!
//! Cases: `enum` (a 1 MiB enum: parse, canonical form, normalization, self-check), `fields`
//! (60,000 fields, 1.8 MB), `properties` (100,000 on one type), `compat` (12,000 added record fields, backward), `unions` (a union
//! of 1,000 records against 1,000 others), `defaults` (record defaults 60 levels of doubling),
//! `decimal` (a value of a decimal with scale 2^31-1); all of them without an argument. The
//! structural budgets are lifted to reach the costs behind them; the work budget stays, so a
//! check over it reports the budget error (and how long it took to get there).

use std::time::Instant;

use tributary_avro::compat::Checker;
use tributary_avro::schema::ParseOptions;
use tributary_avro::{Limits, Schema, codec};

fn lifted() -> Limits {
    Limits {
        schema_bytes: 64 << 20,
        record_fields: usize::MAX,
        enum_symbols: usize::MAX,
        union_branches: usize::MAX,
        named_types: usize::MAX,
        decimal_precision: u32::MAX,
        ..Limits::default()
    }
}

fn parse(text: &str) -> Schema {
    match Schema::parse_with_limits(text, &[], ParseOptions::default(), &lifted()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// Peak resident memory so far, in MiB (Linux).
fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn time<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!(
        "  {label}: {:.1} ms (peak RSS {} MiB)",
        start.elapsed().as_secs_f64() * 1000.0,
        peak_mib()
    );
    out
}

fn check(reader: &Schema, writer: &Schema) {
    let mut checker = Checker::new(&lifted());
    match checker.can_read(reader, writer) {
        Ok(report) => println!(
            "    {} incompatibilities ({} listed), {} steps",
            report.total,
            report.incompatibilities.len(),
            checker.work_spent()
        ),
        Err(e) => println!("    {e} ({} steps)", checker.work_spent()),
    }
}

fn record(name: &str, fields: impl Iterator<Item = String>) -> String {
    let fields: Vec<String> = fields.collect();
    format!(
        r#"{{"type":"record","name":"{name}","fields":[{}]}}"#,
        fields.join(",")
    )
}

fn main() {
    let case = std::env::args().nth(1).unwrap_or_default();
    let all = case.is_empty();
    if all || case == "enum" {
        let symbols: Vec<String> = (0..115_000).map(|i| format!("\"S{i}\"")).collect();
        let text = format!(
            r#"{{"type":"enum","name":"E","symbols":[{}]}}"#,
            symbols.join(",")
        );
        println!("enum of 115,000 symbols ({} bytes)", text.len());
        let s = time("parse", || parse(&text));
        time("canonical form", || s.canonical_string().len());
        time("normalized form", || s.normalized_string().len());
        time("compatibility with itself", || check(&s, &s));
    }
    if all || case == "fields" {
        let text = record(
            "R",
            (0..60_000).map(|i| format!(r#"{{"name":"f{i}","type":"int"}}"#)),
        );
        println!("record of 60,000 fields ({} bytes)", text.len());
        let s = time("parse", || parse(&text));
        time("canonical form", || s.canonical_string().len());
        time("normalized form", || s.normalized_string().len());
        time("compatibility with itself", || check(&s, &s));
    }
    if all || case == "properties" {
        let props: Vec<String> = (0..100_000).map(|i| format!(r#""p{i}":{i}"#)).collect();
        let text = format!(r#"{{"type":"string",{}}}"#, props.join(","));
        println!("100,000 properties on one type ({} bytes)", text.len());
        time("parse", || parse(&text));
    }
    if all || case == "compat" {
        for n in [4_000, 12_000] {
            let old =
                parse(r#"{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}"#);
            let text = record(
                "R",
                std::iter::once(r#"{"name":"id","type":"long"}"#.to_owned()).chain((0..n).map(
                    |i| {
                        format!(
                            r#"{{"name":"f{i}","type":{{"type":"record","name":"N{i}","fields":[{{"name":"x","type":"int"}}]}}}}"#
                        )
                    },
                )),
            );
            println!("{n} added record fields, backward ({} bytes)", text.len());
            let new = time("parse", || parse(&text));
            time("compatibility", || check(&new, &old));
        }
    }
    if all || case == "unions" {
        let union = |prefix: &str| {
            let b: Vec<String> = (0..1_000)
                .map(|i| format!(r#"{{"type":"record","name":"{prefix}{i}","fields":[{{"name":"a","type":"int"}},{{"name":"b","type":"string"}}]}}"#))
                .collect();
            format!("[{}]", b.join(","))
        };
        println!("a union of 1,000 records read as a union of 1,000 others");
        let (r, w) = (parse(&union("R")), parse(&union("W")));
        time("compatibility", || check(&r, &w));
    }
    if all || case == "defaults" {
        let mut t = String::from(
            r#"{"type":"record","name":"R0","fields":[{"name":"x","type":"int","default":1}]}"#,
        );
        for k in 1..60 {
            t = format!(
                r#"{{"type":"record","name":"R{k}","fields":[{{"name":"a","type":{t},"default":{{}}}},{{"name":"b","type":"R{}","default":{{}}}}]}}"#,
                k - 1
            );
        }
        println!(
            "record defaults doubling over 60 levels ({} bytes)",
            t.len()
        );
        time("parse", || parse(&t));
    }
    if all || case == "decimal" {
        let s = match Schema::parse_with_limits(
            r#"{"type":"bytes","logicalType":"decimal","precision":2147483647,"scale":2147483647}"#,
            &[],
            ParseOptions::default(),
            &Limits::default().for_stored(),
        ) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        println!("a value of a decimal with scale 2^31-1");
        let encoded = time("encode 0", || codec::json_to_avro(&s, "0"));
        println!("    {encoded:?}");
    }
}
