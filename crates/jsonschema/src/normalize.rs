//! The normalised text of a JSON Schema (`normalize=true`), as Confluent makes it.
//!
//! Source: confluentinc/schema-registry, `json-schema-provider/src/main/java/io/confluent/
//! kafka/schemaregistry/json/JsonSchema.java` (commit 89791499), `normalize()`: the canonical
//! string is read again with `Jackson.newObjectMapper(true)` (`jackson/Jackson.java`, commit
//! 09198e07), whose node factory (`SortingNodeFactory`) puts every object's members in a
//! `TreeMap`, and the result is written compactly; `normalize()` also sorts and de-duplicates
//! the schema's references, which is the registry's business (the reference list is not part
//! of this text). So:
//! - every object's keys are sorted, at every depth, schema keywords and data alike (`enum`
//!   values, `default`, `const`, unknown keywords), in Java's `String.compareTo` order (UTF-16
//!   code units, which differs from byte order only for characters outside the Basic
//!   Multilingual Plane);
//! - arrays keep their order (`required`, `enum`, `type` lists, `allOf`: Confluent sorts none);
//! - whitespace goes, as in the canonical text.
//!
//! Differences, all in number spelling: Confluent reads numbers as `BigDecimal` and writes them
//! back as Java does (`1E+10`, `1.50`); here they are serde_json's (`10000000000.0`, `1.5`), as in
//! the canonical text. Two texts that differ only in such spellings normalise alike here, not
//! in Confluent. Karapace does not normalise JSON Schemas differently from Confluent's rule.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// The normalised text of a schema's JSON.
pub(crate) fn normalized_string(value: &Value) -> String {
    serde_json::to_string(&sorted(value)).unwrap_or_default()
}

/// `value` with every object's keys sorted. The parse budgets bound the depth (at most
/// [`crate::Budgets::MAX_DEPTH`]), so the recursion is bounded.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| java_order(a, b));
            let mut out = Map::with_capacity(entries.len());
            for (key, item) in entries {
                out.insert(key.clone(), sorted(item));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units.
fn java_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_depth_and_arrays_kept() {
        let value: Value = serde_json::from_str(
            r#"{"type":"object","properties":{"b":{"type":"string"},"a":{"maxLength":3,"description":"x"}},"required":["b","a"],"enum":[{"z":1,"y":2}]}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            normalized_string(&value),
            r#"{"enum":[{"y":2,"z":1}],"properties":{"a":{"description":"x","maxLength":3},"b":{"type":"string"}},"required":["b","a"],"type":"object"}"#
        );
    }

    #[test]
    fn order_is_utf16_as_in_java() {
        // U+FF21 (a BMP character) sorts after U+1F600 in UTF-16, before it in UTF-8.
        assert_eq!(java_order("\u{1F600}", "\u{FF21}"), Ordering::Less);
        assert_eq!("\u{1F600}".cmp("\u{FF21}"), Ordering::Greater);
    }
}
