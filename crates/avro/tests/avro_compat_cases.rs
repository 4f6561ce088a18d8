//! Runs every case of the shared Avro compatibility corpus (`shared/avro-compat/cases.json`,
//! taken from Apache Avro's Java and Ruby test suites) against this crate.
//!
//! The corpus lives outside the repository, next to it: `<workspace>/../shared/avro-compat`.
//! Set `AVRO_COMPAT_CASES` to point elsewhere. A missing corpus is a failure, never a skip.

use std::path::PathBuf;

use tributary_avro::compat::{self, CompatibilityLevel};
use tributary_avro::json::{Json, Object};
use tributary_avro::schema::Schema;

fn cases_path() -> PathBuf {
    match std::env::var_os("AVRO_COMPAT_CASES") {
        Some(p) => PathBuf::from(p),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/avro-compat/cases.json")
        }
    }
}

fn load_cases() -> Vec<Json> {
    let path = cases_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the Avro compatibility corpus is required but could not be read from {} ({e}); \
             set AVRO_COMPAT_CASES to its location",
            path.display()
        )
    });
    match Json::parse(&text) {
        Ok(Json::Array(cases)) => cases,
        Ok(_) => panic!("{} is not a JSON array of cases", path.display()),
        Err(e) => panic!("{} is not valid JSON: {e}", path.display()),
    }
}

fn field<'a>(case: &'a Object, key: &str) -> Result<&'a Json, String> {
    case.get(key).ok_or_else(|| format!("case has no '{key}'"))
}

fn parse(schema: &Json) -> Result<Schema, String> {
    Schema::parse(&schema.to_jackson_string(), &[]).map_err(|e| e.to_string())
}

/// Runs one case; `Err` describes how it failed.
fn run_case(case: &Object) -> Result<(), String> {
    let invalid = matches!(case.get("invalid_schema"), Some(Json::Bool(true)));
    let is_history = case.contains_key("level");
    let texts: Vec<&Json> = if is_history {
        let mut v: Vec<&Json> = field(case, "existing")?
            .as_array()
            .ok_or("'existing' is not an array")?
            .iter()
            .collect();
        v.push(field(case, "candidate")?);
        v
    } else {
        vec![field(case, "reader")?, field(case, "writer")?]
    };
    let parsed: Vec<Result<Schema, String>> = texts.iter().map(|t| parse(t)).collect();

    if invalid {
        return if parsed.iter().any(Result::is_err) {
            Ok(())
        } else {
            Err("expected a schema to be rejected as invalid, all parsed".to_owned())
        };
    }
    let schemas: Vec<Schema> = parsed
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("a schema failed to parse: {e}"))?;

    if is_history {
        let level_text = field(case, "level")?
            .as_str()
            .ok_or("'level' is not a string")?;
        let level = CompatibilityLevel::parse(level_text)
            .ok_or_else(|| format!("unknown level {level_text}"))?;
        let expected = match field(case, "compatible")? {
            Json::Bool(b) => *b,
            other => return Err(format!("'compatible' is {other}")),
        };
        let (candidate, existing) = schemas.split_last().ok_or("no schemas")?;
        let existing: Vec<&Schema> = existing.iter().collect();
        let messages = compat::check(level, candidate, &existing);
        if messages.is_empty() != expected {
            let reasons: Vec<String> = messages.iter().map(ToString::to_string).collect();
            return Err(format!(
                "{level}: expected compatible={expected}, got {} [{}]",
                messages.is_empty(),
                reasons.join("; ")
            ));
        }
        return Ok(());
    }

    let [reader, writer] = schemas.as_slice() else {
        return Err("a pair case needs two schemas".to_owned());
    };
    let found = compat::can_read(reader, writer);
    // The registry meaning of a pair: registering `reader` after `writer` under BACKWARD.
    let registry = compat::check(CompatibilityLevel::Backward, reader, &[writer]);
    if found.len() != registry.len() {
        return Err("check(BACKWARD) disagrees with can_read".to_owned());
    }
    match field(case, "reader_can_read_writer")? {
        Json::Null => Ok(()),
        Json::Bool(expected) => {
            if found.is_empty() == *expected {
                Ok(())
            } else {
                let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
                Err(format!(
                    "expected reader_can_read_writer={expected}, got {} [{}]",
                    found.is_empty(),
                    reasons.join("; ")
                ))
            }
        }
        other => Err(format!("'reader_can_read_writer' is {other}")),
    }
}

#[test]
fn every_case_of_the_shared_corpus_passes() {
    let cases = load_cases();
    assert!(!cases.is_empty(), "the corpus has no cases");
    let mut failures = Vec::new();
    let mut passed = 0usize;
    for (i, case) in cases.iter().enumerate() {
        let Some(obj) = case.as_object() else {
            failures.push(format!("case #{i}: not an object"));
            continue;
        };
        let id = obj
            .get("id")
            .and_then(Json::as_str)
            .map_or_else(|| format!("#{i}"), str::to_owned);
        let outcome = std::panic::catch_unwind(|| run_case(obj));
        match outcome {
            Ok(Ok(())) => passed += 1,
            Ok(Err(why)) => failures.push(format!("{id}: {why}")),
            Err(_) => failures.push(format!("{id}: panicked")),
        }
    }
    println!(
        "{passed} of {} Avro compatibility cases passed",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn crossed_field_aliases_parse_and_are_judged() {
    // avro-rb-35: Java parses this record; its checker then throws, which Confluent reports as
    // an incompatibility ("Unexpected exception during compatibility check").
    let reader = Schema::parse(
        r#"{"type":"record","name":"Record","fields":[
            {"name":"field1","type":"string","aliases":["field2"]},
            {"name":"field2","type":"int","aliases":["field1"]}]}"#,
        &[],
    )
    .expect("crossed aliases parse, as in Java");
    let writer = Schema::parse(
        r#"{"type":"record","name":"Record","fields":[
            {"name":"field1","type":"int"},{"name":"field2","type":"string"}]}"#,
        &[],
    )
    .expect("writer parses");
    let found = compat::can_read(&reader, &writer);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind.as_str(), "UNEXPECTED_ERROR");
    assert!(
        found[0].message.contains("matches multiple fields"),
        "{}",
        found[0].message
    );
}
