//! One handler per route of Confluent's API. Each reads the request (path, query, body), asks
//! [`Access`] whether the caller may, calls the [`Registry`] core and writes Confluent's response
//! shape; no behaviour lives here.

#![warn(clippy::arithmetic_side_effects)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;
use serde::Serialize;
use tributary_avro::compat::CompatibilityLevel;
use tributary_security::authz::{Action, Caller};

use crate::access::Access;
use crate::error::RegistryError;
use crate::http::error::HttpError;
use crate::http::extract::{JsonBody, Params, V1_JSON, schema_id, truncated, version_selector};
use crate::http::wire::{
    ClusterIdJson, ClusterScope, Clusters, CompatibilityJson, ConfigJson, ConfigUpdate, ModeJson,
    RegisterResponse, SchemaByIdJson, SchemaRequest, SubjectVersionJson, SubjectVersionRefJson,
};
use crate::model::Mode;
use crate::registry::{RegisterRequest, Registered, Registry, StoredSchema};
use crate::schema_type::SchemaType;
use crate::store::SubjectFilter;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub registry: Arc<Registry>,
    pub access: Access,
    /// `GET /schemas/ids/{id}` bodies in the default format, serialized once: schemas are
    /// immutable, and clients fetch them on every first sight of an id.
    by_id: Arc<RwLock<HashMap<i32, Bytes>>>,
}

/// How many schema bodies [`ApiState`] keeps serialized.
const BY_ID_CACHE_ENTRIES: usize = 100_000;

impl ApiState {
    pub fn new(registry: Arc<Registry>, access: Access) -> Self {
        Self {
            registry,
            access,
            by_id: Arc::default(),
        }
    }
}

/// The caller of a request (its principal and address, put there by the perimeter's layers).
#[derive(Debug)]
pub struct Calling(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Calling {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Calling(Caller::from_extensions(&parts.extensions)))
    }
}

type Reply = Result<Response, HttpError>;
type PathOf<T> = Result<Path<T>, PathRejection>;

/// The OpenAPI document of this API (kept in the repository, served at `/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// A JSON response in Confluent's media type.
fn json<T: Serialize + ?Sized>(value: &T) -> Reply {
    let body = serde_json::to_vec(value).map_err(|error| HttpError::Internal(error.to_string()))?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(V1_JSON))], body).into_response())
}

/// Serialized JSON bytes as a response in Confluent's media type.
fn json_bytes(body: Bytes) -> Response {
    ([(CONTENT_TYPE, HeaderValue::from_static(V1_JSON))], body).into_response()
}

/// A schema's own text as the body (the `/schema` routes).
fn raw(text: String) -> Reply {
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(V1_JSON))], text).into_response())
}

/// Path parameters; the only way to fail is percent-decoding to something that is not UTF-8.
fn path<T>(path: PathOf<T>) -> Result<T, HttpError> {
    path.map(|Path(value)| value).map_err(|rejection| {
        RegistryError::InvalidSubject {
            subject: "(not UTF-8)".to_owned(),
            reason: rejection.body_text(),
        }
        .into()
    })
}

/// A schema's text in a Confluent `format`: as stored (`default`), or one of its type's formats
/// (`resolved` for AVRO, `serialized` and `ignore_extensions` for PROTOBUF).
async fn formatted<'a>(
    registry: &Registry,
    stored: &'a StoredSchema,
    format: Option<&str>,
) -> Result<Cow<'a, str>, HttpError> {
    match format.map(str::trim) {
        None | Some("") => Ok(Cow::Borrowed(stored.text.as_str())),
        Some(format) if format.eq_ignore_ascii_case("default") => {
            Ok(Cow::Borrowed(stored.text.as_str()))
        }
        Some(format) => match registry.formatted_text(stored, format).await? {
            Some(text) => Ok(Cow::Owned(text)),
            None => Err(RegistryError::InvalidArgument {
                field: "format",
                reason: format!(
                    "'{}' is not a format of {} schemas (use {})",
                    truncated(format),
                    stored.schema_type,
                    stored.schema_type.formats()
                ),
            }
            .into()),
        },
    }
}

fn subject_filter(params: &Params) -> SubjectFilter {
    if params.flag("deletedOnly") || params.flag("deleted_only") {
        SubjectFilter::DeletedOnly
    } else if params.flag("deleted") {
        SubjectFilter::All
    } else {
        SubjectFilter::Live
    }
}

/// `subjectPrefix`; Confluent's default `:*:` (every subject of the default context) means all.
fn subject_prefix(params: &Params) -> &str {
    params
        .get("subjectPrefix")
        .filter(|prefix| *prefix != ":*:")
        .unwrap_or("")
}

/// `limit`: absent, zero or negative means no limit, as in Confluent.
fn limit(params: &Params) -> Result<Option<i64>, HttpError> {
    Ok(params.int("limit")?.filter(|limit| *limit > 0))
}

pub fn parse_level(value: Option<&str>) -> Result<CompatibilityLevel, HttpError> {
    let value = value.unwrap_or_default();
    CompatibilityLevel::parse(value.trim()).ok_or_else(|| {
        RegistryError::InvalidCompatibilityLevel {
            value: truncated(value),
        }
        .into()
    })
}

/// The action a delete needs.
fn delete_action(permanent: bool) -> Action {
    if permanent {
        Action::DeletePermanent
    } else {
        Action::Delete
    }
}

pub fn parse_mode(value: Option<&str>) -> Result<Mode, HttpError> {
    let value = value.unwrap_or_default();
    Mode::parse(value.trim()).ok_or_else(|| {
        RegistryError::InvalidMode {
            value: truncated(value),
        }
        .into()
    })
}

// ----- server ------------------------------------------------------------------------------

/// `GET /`: an empty object, Confluent's liveness answer.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn root() -> Reply {
    json(&serde_json::Map::new())
}

/// `GET /v1/metadata/id`: the cluster id document. This registry is not tied to one Kafka
/// cluster, so `kafka-cluster` is empty.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn metadata_id() -> Reply {
    json(&ClusterIdJson {
        scope: ClusterScope {
            path: [],
            clusters: Clusters {
                kafka_cluster: "",
                schema_registry_cluster: "tributary",
            },
        },
    })
}

/// `GET /openapi.json`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn openapi() -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        OPENAPI,
    )
        .into_response()
}

/// `GET /schemas/types`: the schema types this registry stores.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn schema_types() -> Reply {
    json(&SchemaType::SERVED.map(SchemaType::as_str))
}

/// `GET /contexts`: the default context only, as Confluent lists it (`.`). Context-qualified
/// subjects (`:.ctx:subject`) are refused as invalid subjects (42208).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn contexts() -> Reply {
    json(&["."])
}

// ----- subjects ----------------------------------------------------------------------------

/// `GET /subjects`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_subjects(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = Params::parse(query.as_deref());
    let offset = params.int("offset")?.unwrap_or(0);
    let limit = limit(&params)?;
    if api.access.reads_everything(&caller) {
        let subjects = api
            .registry
            .list_subjects_at(
                subject_prefix(&params),
                subject_filter(&params),
                offset,
                limit,
            )
            .await?;
        return json(&subjects);
    }
    // Only what the caller may read; the page is cut from that.
    let subjects = api
        .registry
        .list_subjects_at(subject_prefix(&params), subject_filter(&params), 0, None)
        .await?;
    let visible: Vec<&String> = subjects
        .iter()
        .filter(|subject| api.access.can_read(&caller, subject))
        .skip(usize::try_from(offset).unwrap_or(0))
        .take(limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit).unwrap_or(usize::MAX)
        }))
        .collect();
    json(&visible)
}

/// `POST /subjects/{subject}`: is this schema registered under the subject?
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lookup(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
    JsonBody(mut request): JsonBody<SchemaRequest>,
) -> Reply {
    let subject = path(subject)?;
    api.access.require(&caller, Action::Read, &subject)?;
    request.check_supported()?;
    let params = Params::parse(query.as_deref());
    let references = request.references();
    let found = api
        .registry
        .lookup(
            &subject,
            request.schema.as_deref().unwrap_or_default(),
            request.schema_type.as_deref().unwrap_or_default(),
            &references,
            params.flag("normalize"),
            params.flag("deleted"),
        )
        .await?;
    json(&SubjectVersionJson::new(&found, &found.schema.text))
}

/// `DELETE /subjects/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_subject(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let subject = path(subject)?;
    let params = Params::parse(query.as_deref());
    let permanent = params.flag("permanent");
    let deleted = api
        .access
        .change(
            &caller,
            delete_action(permanent),
            &subject,
            api.registry.delete_subject(&subject, permanent),
        )
        .await?;
    json(&deleted)
}

/// `GET /subjects/{subject}/versions`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_versions(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let subject = path(subject)?;
    api.access.require(&caller, Action::Read, &subject)?;
    let params = Params::parse(query.as_deref());
    json(
        &api.registry
            .list_versions(&subject, params.flag("deleted"))
            .await?,
    )
}

/// `POST /subjects/{subject}/versions`: register (in IMPORT mode with the body's `id` and
/// `version`).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn register(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
    JsonBody(mut request): JsonBody<SchemaRequest>,
) -> Reply {
    let subject = path(subject)?;
    request.check_supported()?;
    let params = Params::parse(query.as_deref());
    let references = request.references();
    // Giving the id is an IMPORT-mode write: a permission of its own.
    let action = if request.id.is_some() {
        Action::Import
    } else {
        Action::Write
    };
    let registered = api
        .access
        .change_if(
            &caller,
            action,
            &subject.clone(),
            api.registry.register(RegisterRequest {
                subject,
                schema: request.schema.unwrap_or_default(),
                schema_type: request.schema_type.unwrap_or_default(),
                references,
                normalize: params.flag("normalize"),
                id: request.id,
                version: request.version,
            }),
            |registered: &Registered| registered.created,
        )
        .await?;
    json(&RegisterResponse { id: registered.id })
}

/// `GET /subjects/{subject}/versions/{version}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_version(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    segments: PathOf<(String, String)>,
    RawQuery(query): RawQuery,
) -> Reply {
    let (subject, version) = path(segments)?;
    api.access.require(&caller, Action::Read, &subject)?;
    let params = Params::parse(query.as_deref());
    let found = api
        .registry
        .find_version(
            &subject,
            version_selector(&version)?,
            params.flag("deleted"),
        )
        .await?;
    let text = formatted(&api.registry, &found.schema, params.get("format")).await?;
    json(&SubjectVersionJson::new(&found, &text))
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema text alone.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_version_schema(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    segments: PathOf<(String, String)>,
    RawQuery(query): RawQuery,
) -> Reply {
    let (subject, version) = path(segments)?;
    api.access.require(&caller, Action::Read, &subject)?;
    let params = Params::parse(query.as_deref());
    let found = api
        .registry
        .find_version(
            &subject,
            version_selector(&version)?,
            params.flag("deleted"),
        )
        .await?;
    raw(
        formatted(&api.registry, &found.schema, params.get("format"))
            .await?
            .into_owned(),
    )
}

/// `DELETE /subjects/{subject}/versions/{version}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_version(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    segments: PathOf<(String, String)>,
    RawQuery(query): RawQuery,
) -> Reply {
    let (subject, version) = path(segments)?;
    let params = Params::parse(query.as_deref());
    let permanent = params.flag("permanent");
    let selector = version_selector(&version)?;
    let deleted = api
        .access
        .change(
            &caller,
            delete_action(permanent),
            &subject,
            api.registry.delete_version(&subject, selector, permanent),
        )
        .await?;
    json(&deleted)
}

/// `GET /subjects/{subject}/versions/{version}/referencedby`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn referenced_by(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    segments: PathOf<(String, String)>,
) -> Reply {
    let (subject, version) = path(segments)?;
    api.access.require(&caller, Action::Read, &subject)?;
    json(
        &api.registry
            .referenced_by(&subject, version_selector(&version)?)
            .await?,
    )
}

// ----- schemas -----------------------------------------------------------------------------

/// `GET /schemas`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list_schemas(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = Params::parse(query.as_deref());
    let offset = params.int("offset")?.unwrap_or(0);
    let limit = limit(&params)?;
    let everything = api.access.reads_everything(&caller);
    let found = api
        .registry
        .list_schemas(
            subject_prefix(&params),
            params.flag("deleted"),
            params.flag("latestOnly"),
            if everything { offset } else { 0 },
            if everything { limit } else { None },
        )
        .await?;
    let mut visible: Vec<_> = found.iter().collect();
    if !everything {
        // Only what the caller may read; the page is cut from that.
        visible = visible
            .into_iter()
            .filter(|version| api.access.can_read(&caller, &version.subject))
            .skip(usize::try_from(offset).unwrap_or(0))
            .take(limit.map_or(usize::MAX, |limit| {
                usize::try_from(limit).unwrap_or(usize::MAX)
            }))
            .collect();
    }
    let body: Vec<SubjectVersionJson<'_>> = visible
        .into_iter()
        .map(|version| SubjectVersionJson::new(version, &version.schema.text))
        .collect();
    json(&body)
}

/// `GET /schemas/ids/{id}`. `subject` names a context in Confluent; this registry has one
/// context, so it does not change the answer.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn schema_by_id(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    id: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let id = schema_id(&path(id)?)?;
    api.access.require_schema(&caller, id).await?;
    let params = Params::parse(query.as_deref());
    let plain = params
        .get("format")
        .is_none_or(|format| format.is_empty() || format.eq_ignore_ascii_case("default"))
        && !params.flag("fetchMaxId");
    if plain && let Some(body) = api.by_id.read().get(&id) {
        return Ok(json_bytes(body.clone()));
    }
    let stored = api.registry.schema_by_id(id).await?;
    let text = formatted(&api.registry, &stored, params.get("format")).await?;
    let max_id = if params.flag("fetchMaxId") {
        Some(api.registry.max_schema_id().await?)
    } else {
        None
    };
    let body = SchemaByIdJson {
        schema_type: stored.schema_type.as_str(),
        references: stored.references.iter().map(Into::into).collect(),
        schema: &text,
        max_id,
    };
    let body = Bytes::from(
        serde_json::to_vec(&body).map_err(|error| HttpError::Internal(error.to_string()))?,
    );
    if plain {
        let mut cache = api.by_id.write();
        if cache.len() < BY_ID_CACHE_ENTRIES {
            cache.insert(id, body.clone());
        }
    }
    Ok(json_bytes(body))
}

/// `GET /schemas/ids/{id}/schema`: the schema text alone.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn schema_text_by_id(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    id: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let id = schema_id(&path(id)?)?;
    api.access.require_schema(&caller, id).await?;
    let params = Params::parse(query.as_deref());
    let stored = api.registry.schema_by_id(id).await?;
    raw(formatted(&api.registry, &stored, params.get("format"))
        .await?
        .into_owned())
}

/// `GET /schemas/ids/{id}/subjects`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn subjects_by_id(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    id: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let id = schema_id(&path(id)?)?;
    let params = Params::parse(query.as_deref());
    let usages = api
        .registry
        .schema_usages(id, params.flag("deleted"))
        .await?;
    let mut subjects: Vec<&str> = usages
        .iter()
        .map(|(subject, _)| subject.as_str())
        .filter(|subject| api.access.can_read(&caller, subject))
        .collect();
    subjects.dedup();
    json(&subjects)
}

/// `GET /schemas/ids/{id}/versions`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn versions_by_id(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    id: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let id = schema_id(&path(id)?)?;
    let params = Params::parse(query.as_deref());
    let usages = api
        .registry
        .schema_usages(id, params.flag("deleted"))
        .await?;
    let body: Vec<SubjectVersionRefJson<'_>> = usages
        .iter()
        .filter(|(subject, _)| api.access.can_read(&caller, subject))
        .map(|(subject, version)| SubjectVersionRefJson {
            subject,
            version: *version,
        })
        .collect();
    json(&body)
}

// ----- compatibility -----------------------------------------------------------------------

async fn compatibility(
    api: &ApiState,
    caller: &Caller,
    subject: &str,
    version: Option<&str>,
    params: &Params,
    mut request: SchemaRequest,
) -> Reply {
    api.access.require(caller, Action::Read, subject)?;
    request.check_supported()?;
    let version = version.map(version_selector).transpose()?;
    let references = request.references();
    let report = api
        .registry
        .check_compatibility(
            subject,
            request.schema.as_deref().unwrap_or_default(),
            request.schema_type.as_deref().unwrap_or_default(),
            &references,
            version,
            params.flag("normalize"),
        )
        .await?;
    json(&CompatibilityJson::new(&report, params.flag("verbose")))
}

/// `POST /compatibility/subjects/{subject}/versions/{version}`: against that one version.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn compatibility_with_version(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    segments: PathOf<(String, String)>,
    RawQuery(query): RawQuery,
    JsonBody(request): JsonBody<SchemaRequest>,
) -> Reply {
    let (subject, version) = path(segments)?;
    compatibility(
        &api,
        &caller,
        &subject,
        Some(&version),
        &Params::parse(query.as_deref()),
        request,
    )
    .await
}

/// `POST /compatibility/subjects/{subject}/versions`: against the versions the level names.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn compatibility_with_level(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
    JsonBody(request): JsonBody<SchemaRequest>,
) -> Reply {
    let subject = path(subject)?;
    compatibility(
        &api,
        &caller,
        &subject,
        None,
        &Params::parse(query.as_deref()),
        request,
    )
    .await
}

// ----- config ------------------------------------------------------------------------------

async fn get_config_of(
    api: &ApiState,
    caller: &Caller,
    subject: &str,
    query: Option<&str>,
) -> Reply {
    if !subject.is_empty() {
        api.access.require(caller, Action::Read, subject)?;
    }
    let params = Params::parse(query);
    let level = api
        .registry
        .compatibility_level(subject, params.flag("defaultToGlobal"))
        .await?;
    json(&ConfigJson {
        compatibility_level: level.as_str(),
    })
}

async fn put_config_of(
    api: &ApiState,
    caller: &Caller,
    subject: &str,
    update: ConfigUpdate,
) -> Reply {
    update.check_supported()?;
    let level = parse_level(update.compatibility.as_deref())?;
    let level = api
        .access
        .change(
            caller,
            Action::Config,
            subject,
            api.registry.set_compatibility_level(subject, level),
        )
        .await?;
    json(&ConfigUpdate {
        compatibility: Some(level.as_str().to_owned()),
        ..ConfigUpdate::default()
    })
}

async fn delete_config_of(api: &ApiState, caller: &Caller, subject: &str) -> Reply {
    let level = api
        .access
        .change(
            caller,
            Action::Config,
            subject,
            api.registry.delete_compatibility_level(subject),
        )
        .await?;
    json(&ConfigJson {
        compatibility_level: level.as_str(),
    })
}

/// `GET /config`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_config(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    RawQuery(query): RawQuery,
) -> Reply {
    get_config_of(&api, &caller, "", query.as_deref()).await
}

/// `PUT /config`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn put_config(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    JsonBody(update): JsonBody<ConfigUpdate>,
) -> Reply {
    put_config_of(&api, &caller, "", update).await
}

/// `DELETE /config`: back to BACKWARD.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_config(State(api): State<ApiState>, Calling(caller): Calling) -> Reply {
    delete_config_of(&api, &caller, "").await
}

/// `GET /config/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_subject_config(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    get_config_of(&api, &caller, &path(subject)?, query.as_deref()).await
}

/// `PUT /config/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn put_subject_config(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    JsonBody(update): JsonBody<ConfigUpdate>,
) -> Reply {
    put_config_of(&api, &caller, &path(subject)?, update).await
}

/// `DELETE /config/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_subject_config(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
) -> Reply {
    delete_config_of(&api, &caller, &path(subject)?).await
}

// ----- mode --------------------------------------------------------------------------------

async fn get_mode_of(api: &ApiState, caller: &Caller, subject: &str, query: Option<&str>) -> Reply {
    if !subject.is_empty() {
        api.access.require(caller, Action::Read, subject)?;
    }
    let params = Params::parse(query);
    let mode = api
        .registry
        .mode(subject, params.flag("defaultToGlobal"))
        .await?;
    json(&ModeJson {
        mode: Some(mode.as_str().to_owned()),
    })
}

async fn put_mode_of(
    api: &ApiState,
    caller: &Caller,
    subject: &str,
    query: Option<&str>,
    update: ModeJson,
) -> Reply {
    let params = Params::parse(query);
    let mode = parse_mode(update.mode.as_deref())?;
    let mode = api
        .access
        .change(
            caller,
            Action::Config,
            subject,
            api.registry.set_mode(subject, mode, params.flag("force")),
        )
        .await?;
    json(&ModeJson {
        mode: Some(mode.as_str().to_owned()),
    })
}

async fn delete_mode_of(api: &ApiState, caller: &Caller, subject: &str) -> Reply {
    let mode = api
        .access
        .change(
            caller,
            Action::Config,
            subject,
            api.registry.delete_mode(subject),
        )
        .await?;
    json(&ModeJson {
        mode: Some(mode.as_str().to_owned()),
    })
}

/// `GET /mode`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_mode(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    RawQuery(query): RawQuery,
) -> Reply {
    get_mode_of(&api, &caller, "", query.as_deref()).await
}

/// `PUT /mode`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn put_mode(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    RawQuery(query): RawQuery,
    JsonBody(update): JsonBody<ModeJson>,
) -> Reply {
    put_mode_of(&api, &caller, "", query.as_deref(), update).await
}

/// `DELETE /mode`: back to READWRITE.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_mode(State(api): State<ApiState>, Calling(caller): Calling) -> Reply {
    delete_mode_of(&api, &caller, "").await
}

/// `GET /mode/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn get_subject_mode(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    get_mode_of(&api, &caller, &path(subject)?, query.as_deref()).await
}

/// `PUT /mode/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn put_subject_mode(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
    RawQuery(query): RawQuery,
    JsonBody(update): JsonBody<ModeJson>,
) -> Reply {
    put_mode_of(&api, &caller, &path(subject)?, query.as_deref(), update).await
}

/// `DELETE /mode/{subject}`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete_subject_mode(
    State(api): State<ApiState>,
    Calling(caller): Calling,
    subject: PathOf<String>,
) -> Reply {
    delete_mode_of(&api, &caller, &path(subject)?).await
}

// ----- fallbacks ---------------------------------------------------------------------------

/// Any path no route has: Confluent's 404.
pub async fn unknown_route() -> HttpError {
    HttpError::NotFound(None)
}

/// A route's path with a method it does not have: Confluent's 405.
pub async fn wrong_method() -> HttpError {
    HttpError::MethodNotAllowed
}
