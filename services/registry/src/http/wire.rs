//! The JSON bodies of Confluent Schema Registry's API (Confluent Platform 7.9 shapes): what
//! requests carry and what responses answer. `schemaType` is omitted for AVRO and empty
//! `references` are omitted, as Confluent's `NON_EMPTY` serialization does.

use serde::{Deserialize, Serialize};

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

/// The body of register, lookup and compatibility requests. Unknown fields (`metadata`,
/// `ruleSet`, ...) are ignored; `id` and `version` are for IMPORT mode.
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
}

impl SchemaRequest {
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

/// `PUT /config` takes (and answers) the level as `compatibility`; other config fields
/// (`normalize`, `alias`, ...) are not supported and ignored.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigUpdate {
    #[serde(default)]
    pub compatibility: Option<String>,
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
