//! The JSON bodies of Confluent Schema Registry's API (Confluent Platform 7.9 shapes): what
//! requests carry and what responses answer. `schemaType` is omitted for AVRO and empty
//! `references` are omitted, as Confluent's `NON_EMPTY` serialization does.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RegistryError;
use crate::model::{Reference, SubjectVersion};
use crate::registry::CompatibilityReport;

/// A schema reference as Confluent writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceJson {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

impl From<&Reference> for ReferenceJson {
    fn from(reference: &Reference) -> Self {
        ReferenceJson {
            name: reference.name.clone(),
            subject: reference.subject.clone(),
            version: reference.version,
        }
    }
}

impl From<ReferenceJson> for Reference {
    fn from(reference: ReferenceJson) -> Self {
        Reference {
            name: reference.name,
            subject: reference.subject,
            version: reference.version,
        }
    }
}

/// The body of register, lookup and compatibility requests; `id` and `version` are for IMPORT
/// mode. Confluent's data contracts (`metadata`, `ruleSet`) are not implemented: read only to
/// refuse them ([`SchemaRequest::check_supported`]) rather than drop them. Other unknown fields
/// are ignored, as Confluent does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<ReferenceJson>>,
    #[serde(default)]
    pub id: Option<i32>,
    #[serde(default)]
    pub version: Option<i32>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub rule_set: Option<Value>,
}

impl SchemaRequest {
    /// Refuses (42201) a request asking for data contracts; `null` and empty values are absent.
    pub fn check_supported(&self) -> Result<(), RegistryError> {
        for (field, value) in [("metadata", &self.metadata), ("ruleSet", &self.rule_set)] {
            if value.as_ref().is_some_and(|value| !is_absent(value)) {
                return Err(RegistryError::UnsupportedSchemaField { field });
            }
        }
        Ok(())
    }

    pub fn references(&mut self) -> Vec<Reference> {
        self.references
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(Reference::from)
            .collect()
    }
}

/// What register answers.
#[derive(Debug, Serialize)]
pub struct RegisterResponse {
    pub id: i32,
}

fn is_avro(schema_type: &&str) -> bool {
    *schema_type == "AVRO"
}

/// One subject version (`GET /subjects/{s}/versions/{v}`, lookup, `GET /schemas`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectVersionJson<'a> {
    pub subject: &'a str,
    pub version: i32,
    pub id: i32,
    #[serde(skip_serializing_if = "is_avro")]
    pub schema_type: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceJson>,
    pub schema: &'a str,
}

impl<'a> SubjectVersionJson<'a> {
    pub fn new(found: &'a SubjectVersion, schema: &'a str) -> Self {
        SubjectVersionJson {
            subject: &found.subject,
            version: found.version,
            id: found.id,
            schema_type: found.schema.schema_type.as_str(),
            references: found
                .schema
                .references
                .iter()
                .map(ReferenceJson::from)
                .collect(),
            schema,
        }
    }
}

/// A schema by id (`GET /schemas/ids/{id}`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaByIdJson<'a> {
    #[serde(skip_serializing_if = "is_avro")]
    pub schema_type: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceJson>,
    pub schema: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_id: Option<i32>,
}

/// A subject and version (`GET /schemas/ids/{id}/versions`).
#[derive(Debug, Serialize)]
pub struct SubjectVersionRefJson<'a> {
    pub subject: &'a str,
    pub version: i32,
}

/// A compatibility test's answer; `messages` only when `verbose=true`.
#[derive(Debug, Serialize)]
pub struct CompatibilityJson {
    pub is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<String>>,
}

impl CompatibilityJson {
    /// The answer of a test: the reasons' descriptions only when `verbose`.
    pub fn new(report: &CompatibilityReport, verbose: bool) -> Self {
        CompatibilityJson {
            is_compatible: report.is_compatible(),
            messages: verbose.then(|| report.descriptions()),
        }
    }
}

/// `GET` and `DELETE /config` answer the level as `compatibilityLevel`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigJson {
    pub compatibility_level: &'static str,
}

/// `PUT /config` takes (and answers) the level as `compatibility`. Confluent's other config
/// fields are not implemented: read only to refuse them ([`ConfigUpdate::check_supported`])
/// rather than drop them, and never written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigUpdate {
    #[serde(default)]
    pub compatibility: Option<String>,
    #[serde(default, skip_serializing)]
    pub normalize: Option<Value>,
    #[serde(default, skip_serializing)]
    pub alias: Option<Value>,
    #[serde(default, skip_serializing)]
    pub validate_fields: Option<Value>,
    #[serde(default, skip_serializing)]
    pub compatibility_group: Option<Value>,
    #[serde(default, skip_serializing)]
    pub default_metadata: Option<Value>,
    #[serde(default, skip_serializing)]
    pub override_metadata: Option<Value>,
    #[serde(default, skip_serializing)]
    pub default_rule_set: Option<Value>,
    #[serde(default, skip_serializing)]
    pub override_rule_set: Option<Value>,
}

impl ConfigUpdate {
    /// Refuses (422) an update setting a config field other than `compatibility`; `null`,
    /// `false`, `""` and empty values are absent (Confluent's defaults).
    pub fn check_supported(&self) -> Result<(), RegistryError> {
        let fields = [
            ("normalize", &self.normalize),
            ("alias", &self.alias),
            ("validateFields", &self.validate_fields),
            ("compatibilityGroup", &self.compatibility_group),
            ("defaultMetadata", &self.default_metadata),
            ("overrideMetadata", &self.override_metadata),
            ("defaultRuleSet", &self.default_rule_set),
            ("overrideRuleSet", &self.override_rule_set),
        ];
        for (field, value) in fields {
            if value.as_ref().is_some_and(|value| !is_absent(value)) {
                return Err(RegistryError::UnsupportedConfigField { field });
            }
        }
        Ok(())
    }
}

/// Whether a request field's value asks for nothing: `null`, `false`, `""`, or an array or
/// object holding only nulls and empty arrays and objects (`{"properties": {}}`, as clients
/// send an empty `Metadata`).
fn is_absent(value: &Value) -> bool {
    fn empty(value: &Value) -> bool {
        match value {
            Value::Null => true,
            Value::Array(items) => items.iter().all(empty),
            Value::Object(members) => members.values().all(empty),
            _ => false,
        }
    }
    matches!(value, Value::Bool(false)) || value.as_str() == Some("") || empty(value)
}

/// `/mode` bodies, both ways.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModeJson {
    #[serde(default)]
    pub mode: Option<String>,
}

/// `GET /v1/metadata/id`: Confluent's `ServerClusterId` (its empty `id` omitted).
#[derive(Debug, Serialize)]
pub struct ClusterIdJson {
    pub scope: ClusterScope,
}

#[derive(Debug, Serialize)]
pub struct ClusterScope {
    pub path: [&'static str; 0],
    pub clusters: Clusters,
}

#[derive(Debug, Serialize)]
pub struct Clusters {
    #[serde(rename = "kafka-cluster")]
    pub kafka_cluster: &'static str,
    #[serde(rename = "schema-registry-cluster")]
    pub schema_registry_cluster: &'static str,
}
