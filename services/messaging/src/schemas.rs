//! Schemas, resolved through the registry's gRPC API and cached:
//!
//! - id -> parsed schema (Avro or Protobuf, [`WriterSchema`]), forever (a registry's ids are
//!   immutable);
//! - subject + version -> id, forever (versions are immutable);
//! - subject -> latest version, for a short TTL (`--latest-schema-ttl-ms`);
//! - (subject, schema text) -> id for producers' inline schemas, forever;
//! - reader schema text -> parsed schema, forever (Avro readers and inline schemas, and inline
//!   .proto texts);
//! - subject + version -> text and references of referenced schemas, forever.
//!
//! Schemas a client gives (reader and inline schemas) are held to the service's [`Limits`];
//! those the registry serves were accepted there and are read as stored schemas
//! ([`Limits::for_stored`]). A schema's references are fetched once each, however many paths
//! lead to them, at most `Limits::references` of them, nested at most
//! `Limits::reference_depth` deep.

#![warn(clippy::arithmetic_side_effects)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tonic::Code;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use tributary_avro::schema::ParseOptions;
use tributary_avro::{Limit, LimitExceeded, Limits, Schema};
use tributary_json_schema::JsonSchema;
use tributary_proto::registry::v1 as registry;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tributary_protobuf::{Budgets, Dependency, ProtoError, ProtoSchema};
use tributary_security::client::CallCredentials;
use tributary_telemetry::propagation::InjectTraceContext;

use crate::error::MessagingError;

/// What every registry call carries: the caller's trace context (so the registry's spans are
/// its children) and the service's own credentials.
#[derive(Debug, Clone)]
pub struct RegistryCall {
    credentials: CallCredentials,
}

impl Interceptor for RegistryCall {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = InjectTraceContext.call(request)?;
        self.credentials.apply(&mut request);
        Ok(request)
    }
}

/// A registry channel with [`RegistryCall`]'s metadata on every call.
pub type RegistryChannel = InterceptedService<Channel, RegistryCall>;

/// The registry client and its caches.
#[derive(Debug, Clone)]
pub struct Schemas {
    client: RegistryServiceClient<RegistryChannel>,
    channel: RegistryChannel,
    by_id: Cache<u32, WriterSchema>,
    versions: Cache<(String, i32), u32>,
    /// Subject -> its latest version's id, when the registry said so, and until when it is
    /// used without asking again (`latest_ttl` after it was fetched, or after a failed attempt
    /// to refresh it). Kept up to `latest_max_stale` to answer while the registry is
    /// unreachable.
    latest: Cache<String, LatestEntry>,
    latest_ttl: Duration,
    latest_max_stale: Duration,
    /// Lookups of a latest version answered from a stale entry because the registry was
    /// unreachable (a metric).
    stale_latest_served: Arc<AtomicU64>,
    /// Whether the health check last reached the registry (see [`Schemas::registry`]).
    registry_reachable: Arc<AtomicBool>,
    /// (subject, schema type, text) -> the id it was registered as.
    registered: Cache<(String, &'static str, String), u32>,
    readers: Cache<String, Arc<Schema>>,
    proto_readers: Cache<String, Arc<ProtoSchema>>,
    json_readers: Cache<String, Arc<JsonSchema>>,
    /// Referenced schemas: (subject, version) -> (text, its references).
    referenced: Cache<(String, i32), Arc<Referenced>>,
    limits: Limits,
}

/// The longest a latest version is kept (a longer TTL or staleness is cut to it), so that
/// times computed from it never overflow.
const MAX_CACHE_TIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// `at` plus `ttl` (at most [`MAX_CACHE_TIME`], so it does not overflow; if it still did, `at`:
/// asking again is the safe side).
fn fresh_for(at: Instant, ttl: Duration) -> Instant {
    at.checked_add(ttl.min(MAX_CACHE_TIME)).unwrap_or(at)
}

/// A subject's latest version as last fetched.
#[derive(Debug, Clone, Copy)]
struct LatestEntry {
    id: u32,
    /// When the registry gave it.
    fetched: Instant,
    /// Until when it is used without asking the registry.
    fresh_until: Instant,
}

/// The most schema text the caches of client schemas (reader and inline schemas, parsed, and
/// the ids inline schemas were registered as) stand for: a parsed schema takes several times
/// its text.
const CLIENT_SCHEMA_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The most schema text the caches of registry schemas (parsed by id, and the texts of
/// referenced versions) stand for, each.
const REGISTRY_SCHEMA_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// A cache entry's weight: its text's length (plus a little for the entry itself).
fn weight(text_bytes: usize) -> u32 {
    u32::try_from(text_bytes.saturating_add(64)).unwrap_or(u32::MAX)
}

/// A referenced schema version: its text and its own references.
type Referenced = (String, Vec<registry::SchemaReference>);

/// A registry schema, of either type.
#[derive(Debug, Clone)]
pub enum WriterSchema {
    Avro(Arc<Schema>),
    Protobuf(Arc<ProtoSchema>),
    Json(Arc<JsonSchema>),
}

impl WriterSchema {
    /// The schema's type and the payload that produces with it.
    fn describe(&self) -> (&'static str, &'static str) {
        match self {
            WriterSchema::Avro(_) => ("an AVRO", "avro"),
            WriterSchema::Protobuf(_) => ("a PROTOBUF", "protobuf"),
            WriterSchema::Json(_) => ("a JSON", "json_schema"),
        }
    }

    /// Schema `id` being another type than a payload needs: an error naming both.
    fn wrong_type(&self, id: u32) -> MessagingError {
        let (what, payload) = self.describe();
        MessagingError::invalid(
            "schema",
            format!("schema {id} is {what} schema: produce with a `{payload}` payload"),
        )
    }

    /// The Avro schema; schema `id` being another type is an error naming it.
    pub fn avro(self, id: u32) -> Result<Arc<Schema>, MessagingError> {
        match self {
            WriterSchema::Avro(schema) => Ok(schema),
            other => Err(other.wrong_type(id)),
        }
    }

    /// The Protobuf schema; schema `id` being another type is an error naming it.
    pub fn protobuf(self, id: u32) -> Result<Arc<ProtoSchema>, MessagingError> {
        match self {
            WriterSchema::Protobuf(schema) => Ok(schema),
            other => Err(other.wrong_type(id)),
        }
    }

    /// The JSON schema; schema `id` being another type is an error naming it.
    pub fn json(self, id: u32) -> Result<Arc<JsonSchema>, MessagingError> {
        match self {
            WriterSchema::Json(schema) => Ok(schema),
            other => Err(other.wrong_type(id)),
        }
    }

    /// What it weighs in the cache: about the memory it holds (an Avro schema counted as its
    /// text, as before; a Protobuf schema's descriptor pool is about 80 KiB whatever its text).
    fn weight(&self) -> u32 {
        weight(match self {
            WriterSchema::Avro(schema) => schema.canonical_string().len(),
            WriterSchema::Protobuf(schema) => schema.memory_estimate(),
            WriterSchema::Json(schema) => schema.canonical_string().len().saturating_mul(8),
        })
    }
}

/// The schema of the id a run of records looked up last ([`Schemas::by_id_remembered`]).
#[derive(Debug, Default)]
pub struct LastSchema(Option<(u32, WriterSchema)>);

fn registry_error(status: tonic::Status) -> MessagingError {
    // The registry's own answers carry its ErrorInfo; a status without one was made by this
    // side of the call (a connection that failed, TLS), its message library text.
    let answered = status
        .get_details_error_info()
        .is_some_and(|info| info.domain == REGISTRY_ERROR_DOMAIN);
    let (code, message, answered) = match status.code() {
        // A transport failure reaches us as UNKNOWN or CANCELLED from a dying connection.
        Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => {
            (Code::Unavailable, status.message().to_owned(), answered)
        }
        // The registry refused this service's own credentials: the caller's are not at fault
        // (and must not be told they are), the service's configuration is.
        Code::Unauthenticated | Code::PermissionDenied => (
            Code::Unavailable,
            format!(
                "the registry refused this service's credentials ({}); check REGISTRY_USERNAME and its password, the bearer token or the client certificate",
                status.message()
            ),
            true,
        ),
        code => (code, status.message().to_owned(), answered),
    };
    MessagingError::Registry {
        code,
        message,
        answered,
    }
}

/// The `ErrorInfo.domain` of the registry's errors.
const REGISTRY_ERROR_DOMAIN: &str = "registry.tributary.dev";

/// Parses a schema within `limits`: a schema over a budget is [`MessagingError::OverLimit`]
/// (naming the flag), any other error [`MessagingError::InvalidSchema`].
fn parse(
    text: &str,
    references: &[String],
    limits: &Limits,
    options: ParseOptions,
) -> Result<Schema, MessagingError> {
    let references: Vec<&str> = references.iter().map(String::as_str).collect();
    Schema::parse_with_limits(text, &references, options, limits).map_err(|error| {
        match error.limit() {
            Some(limit) => MessagingError::OverLimit {
                source: limit.clone(),
                context: error
                    .path()
                    .filter(|path| *path != "/")
                    .map(|path| format!("schema at {path}"))
                    .unwrap_or_else(|| "schema".to_owned()),
            },
            None => MessagingError::InvalidSchema {
                reason: error.to_string(),
            },
        }
    })
}

/// A schema a client gives (a consumer's reader schema, a producer's inline schema; no
/// references), parsed within `limits`: its size is checked before anything else.
pub fn parse_client_schema(text: &str, limits: &Limits) -> Result<Schema, MessagingError> {
    if text.len() > limits.schema_bytes {
        return Err(MessagingError::OverLimit {
            source: LimitExceeded {
                limit: Limit::SchemaBytes,
                max: u64::try_from(limits.schema_bytes).unwrap_or(u64::MAX),
                what: format!("a schema of {} bytes", text.len()),
            },
            context: "schema".to_owned(),
        });
    }
    parse(text, &[], limits, ParseOptions::default())
}

/// A .proto text a client gives (a producer's inline schema: no references), compiled within
/// `limits`.
pub fn parse_client_proto(text: &str, limits: &Limits) -> Result<ProtoSchema, MessagingError> {
    ProtoSchema::parse(text, &[], &Budgets::from_limits(limits)).map_err(proto_error)
}

/// A JSON Schema text a client gives (a producer's inline schema: no references), within
/// `limits`.
pub fn parse_client_json_schema(text: &str, limits: &Limits) -> Result<JsonSchema, MessagingError> {
    JsonSchema::parse(
        text,
        &[],
        &tributary_json_schema::Budgets::from_limits(limits),
    )
    .map_err(json_schema_error)
}

/// A JSON Schema error as the service's: over a budget names its flag.
fn json_schema_error(error: tributary_json_schema::SchemaError) -> MessagingError {
    match error {
        tributary_json_schema::SchemaError::OverBudget { budget, what, max } => {
            MessagingError::OverLimit {
                source: LimitExceeded {
                    limit: budget.limit(),
                    max,
                    what,
                },
                context: "schema".to_owned(),
            }
        }
        other => MessagingError::InvalidSchema {
            reason: other.to_string(),
        },
    }
}

/// A Protobuf compile error as the service's: over a budget names its flag.
fn proto_error(error: ProtoError) -> MessagingError {
    match error {
        ProtoError::OverBudget { budget, what, max } => MessagingError::OverLimit {
            source: LimitExceeded {
                limit: budget.limit(),
                max,
                what,
            },
            context: "schema".to_owned(),
        },
        other => MessagingError::InvalidSchema {
            reason: other.to_string(),
        },
    }
}

impl Schemas {
    /// A client of the registry over `channel` (connected lazily: the service starts while the
    /// registry is down, and reports NOT_SERVING until it answers), calling with `credentials`.
    pub fn new(channel: Channel, credentials: CallCredentials, latest_ttl: Duration) -> Self {
        let latest_ttl = latest_ttl.min(MAX_CACHE_TIME);
        let channel = InterceptedService::new(channel, RegistryCall { credentials });
        Self {
            client: RegistryServiceClient::new(channel.clone()),
            channel,
            // Parsed registry schemas, weighed by their text (a parsed schema takes several
            // times its text; 10,000 mebibyte schemas would not fit anywhere).
            by_id: Cache::builder()
                .max_capacity(REGISTRY_SCHEMA_CACHE_BYTES)
                .weigher(|_, schema: &WriterSchema| schema.weight())
                .build(),
            versions: Cache::builder().max_capacity(10_000).build(),
            latest: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(latest_ttl)
                .build(),
            latest_ttl,
            latest_max_stale: Duration::ZERO,
            stale_latest_served: Arc::default(),
            registry_reachable: Arc::new(AtomicBool::new(true)),
            // Keyed by schema texts (up to --max-schema-bytes each): bounded by their size.
            registered: Cache::builder()
                .max_capacity(CLIENT_SCHEMA_CACHE_BYTES)
                .weigher(|key: &(String, &'static str, String), _| {
                    weight(key.0.len().saturating_add(key.2.len()))
                })
                .build(),
            readers: Cache::builder()
                .max_capacity(CLIENT_SCHEMA_CACHE_BYTES)
                .weigher(|key: &String, _| weight(key.len()))
                .build(),
            proto_readers: Cache::builder()
                .max_capacity(CLIENT_SCHEMA_CACHE_BYTES)
                .weigher(|key: &String, _| weight(key.len()))
                .build(),
            json_readers: Cache::builder()
                .max_capacity(CLIENT_SCHEMA_CACHE_BYTES)
                .weigher(|key: &String, _| weight(key.len()))
                .build(),
            referenced: Cache::builder()
                .max_capacity(REGISTRY_SCHEMA_CACHE_BYTES)
                .weigher(|_, found: &Arc<Referenced>| weight(found.0.len()))
                .build(),
            limits: Limits::default(),
        }
    }

    /// Keeps serving a subject's last known latest version for up to `max_stale` after it
    /// was fetched while the registry cannot be reached (0: never past the TTL).
    pub fn with_latest_max_stale(mut self, max_stale: Duration) -> Self {
        let max_stale = max_stale.min(MAX_CACHE_TIME);
        self.latest_max_stale = max_stale;
        self.latest = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(self.latest_ttl.max(max_stale))
            .build();
        self
    }

    /// How many lookups of a latest version were answered from a stale entry because the
    /// registry was unreachable.
    pub fn stale_latest_served(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.stale_latest_served)
    }

    /// These caches with the budgets `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The budgets of schema work.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Notes what the health check found: while the registry is unreachable, lookups that
    /// need it fail at once with UNAVAILABLE (a paused registry would otherwise hold each for
    /// the call timeout, 10 s), and cached schemas keep serving.
    pub fn set_registry_reachable(&self, reachable: bool) {
        self.registry_reachable.store(reachable, Ordering::Relaxed);
    }

    /// A client of the registry, unless the health check found it unreachable.
    fn registry(&self) -> Result<RegistryServiceClient<RegistryChannel>, MessagingError> {
        if self.registry_reachable.load(Ordering::Relaxed) {
            Ok(self.client.clone())
        } else {
            Err(MessagingError::Registry {
                code: Code::Unavailable,
                message: "the registry is unreachable (its health check fails); retry later"
                    .to_owned(),
                answered: true,
            })
        }
    }

    /// The channel to the registry, with credentials (for health checks).
    pub fn channel(&self) -> RegistryChannel {
        self.channel.clone()
    }

    // Each lookup answers from its cache without a registry call's future: the calls are boxed
    // (allocated on a miss only), so the future of a cache hit, created for every record
    // produced or decoded, stays small instead of carrying a gRPC call's kilobytes.

    /// The schema with a global id.
    pub async fn by_id(&self, id: u32) -> Result<WriterSchema, MessagingError> {
        match self.by_id.get(&id) {
            Some(schema) => Ok(schema),
            None => Box::pin(self.fetch_by_id(id)).await,
        }
    }

    /// [`Self::by_id`], answered from `last` when it holds the id. A run of records (a
    /// request, a chunk of a stream, a response) mostly shares one schema, and an id's schema
    /// never changes: the run asks the shared cache (a hash, a lock and statistics per lookup)
    /// once.
    pub async fn by_id_remembered(
        &self,
        id: u32,
        last: &mut LastSchema,
    ) -> Result<WriterSchema, MessagingError> {
        if let Some((last_id, schema)) = &last.0
            && *last_id == id
        {
            return Ok(schema.clone());
        }
        let schema = self.by_id(id).await?;
        last.0 = Some((id, schema.clone()));
        Ok(schema)
    }

    async fn fetch_by_id(&self, id: u32) -> Result<WriterSchema, MessagingError> {
        let wire_id = i32::try_from(id)
            .map_err(|_| MessagingError::invalid("schema_id", format!("{id} is out of range")))?;
        let found = self
            .registry()?
            .get_schema(registry::GetSchemaRequest {
                id: wire_id,
                format: String::new(),
            })
            .await
            .map_err(registry_error)?
            .into_inner();
        let references = self.reference_texts(found.references).await?;
        let schema = if found.schema_type.eq_ignore_ascii_case("JSON") {
            let dependencies: Vec<tributary_json_schema::Dependency<'_>> = references
                .iter()
                .map(|(name, text)| tributary_json_schema::Dependency { name, schema: text })
                .collect();
            let budgets = tributary_json_schema::Budgets::from_limits(&self.limits).for_stored();
            WriterSchema::Json(Arc::new(
                JsonSchema::parse(&found.schema, &dependencies, &budgets)
                    .map_err(json_schema_error)?,
            ))
        } else if found.schema_type.eq_ignore_ascii_case("PROTOBUF") {
            let dependencies: Vec<Dependency<'_>> = references
                .iter()
                .map(|(name, text)| Dependency { name, schema: text })
                .collect();
            let budgets = Budgets::from_limits(&self.limits).for_stored();
            WriterSchema::Protobuf(Arc::new(
                ProtoSchema::parse(&found.schema, &dependencies, &budgets).map_err(proto_error)?,
            ))
        } else {
            // The registry accepted it, defaults and all (as it reads what it stores).
            let options = ParseOptions {
                validate_defaults: false,
            };
            // Each text once (an Avro schema defines its named types once).
            let mut seen = HashSet::new();
            let texts: Vec<String> = references
                .into_iter()
                .map(|(_, text)| text)
                .filter(|text| seen.insert(text.clone()))
                .collect();
            WriterSchema::Avro(Arc::new(parse(
                &found.schema,
                &texts,
                &self.limits.for_stored(),
                options,
            )?))
        };
        self.by_id.insert(id, schema.clone());
        Ok(schema)
    }

    /// The subjects that use schema `id` (live or soft deleted), as the registry lets this
    /// service see them: for authorizing callers that name the id.
    pub async fn subjects_of(&self, id: u32) -> Result<Vec<String>, MessagingError> {
        let wire_id = i32::try_from(id)
            .map_err(|_| MessagingError::invalid("schema_id", format!("{id} is out of range")))?;
        let usages = self
            .registry()?
            .list_schema_usages(registry::ListSchemaUsagesRequest {
                id: wire_id,
                include_deleted: true,
            })
            .await
            .map_err(registry_error)?
            .into_inner()
            .usages;
        let mut subjects: Vec<String> = usages.into_iter().map(|usage| usage.subject).collect();
        subjects.dedup();
        Ok(subjects)
    }

    /// A version of a subject (0 or -1: the latest, cached for the TTL; past it, and up to
    /// the most staleness allowed, still answered while the registry cannot be reached).
    pub async fn by_subject_version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<(u32, WriterSchema), MessagingError> {
        let latest = version == 0 || version == -1;
        let id = if latest {
            match self.latest.get(subject) {
                Some(entry) if Instant::now() < entry.fresh_until => entry.id,
                stale => Box::pin(self.refresh_latest(subject, stale)).await?,
            }
        } else {
            match self.versions.get(&(subject.to_owned(), version)) {
                Some(id) => id,
                None => Box::pin(self.fetch_subject_version(subject, version, false)).await?,
            }
        };
        Ok((id, self.by_id(id).await?))
    }

    /// Asks the registry for a subject's latest version; when it cannot be reached, answers
    /// with `stale` (the last one it gave) if that is within the staleness allowed, and does
    /// not ask again for `latest_ttl` (so an outage costs one attempt per subject per TTL, not
    /// one per record).
    async fn refresh_latest(
        &self,
        subject: &str,
        stale: Option<LatestEntry>,
    ) -> Result<u32, MessagingError> {
        match self.fetch_subject_version(subject, -1, true).await {
            Err(error) if error.is_registry_unreachable() => match stale {
                Some(entry) if entry.fetched.elapsed() < self.latest_max_stale => {
                    self.stale_latest_served.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(subject, id = entry.id, %error, "registry unreachable: serving the last known latest version");
                    self.latest.insert(
                        subject.to_owned(),
                        LatestEntry {
                            fresh_until: fresh_for(Instant::now(), self.latest_ttl),
                            ..entry
                        },
                    );
                    Ok(entry.id)
                }
                _ => Err(error),
            },
            answer => answer,
        }
    }

    async fn fetch_subject_version(
        &self,
        subject: &str,
        version: i32,
        latest: bool,
    ) -> Result<u32, MessagingError> {
        let found = self
            .registry()?
            .get_subject_version(registry::GetSubjectVersionRequest {
                subject: subject.to_owned(),
                version: if latest { -1 } else { version },
                include_deleted: false,
            })
            .await
            .map_err(registry_error)?
            .into_inner()
            .subject_version
            .ok_or_else(|| MessagingError::Registry {
                code: Code::Internal,
                message: "the registry answered without a subject version".to_owned(),
                answered: false,
            })?;
        let id = found.id as u32;
        if latest {
            let fetched = Instant::now();
            self.latest.insert(
                subject.to_owned(),
                LatestEntry {
                    id,
                    fetched,
                    fresh_until: fresh_for(fetched, self.latest_ttl),
                },
            );
        }
        self.versions
            .insert((subject.to_owned(), found.version), id);
        Ok(id)
    }

    /// Registers a schema of `schema_type` ("AVRO", "PROTOBUF") under a subject (a lookup when
    /// it is registered already) and returns its id.
    pub async fn register(
        &self,
        subject: &str,
        schema_type: &'static str,
        text: &str,
    ) -> Result<(u32, WriterSchema), MessagingError> {
        let key = (subject.to_owned(), schema_type, text.to_owned());
        let id = match self.registered.get(&key) {
            Some(id) => id,
            None => Box::pin(self.register_new(key)).await?,
        };
        Ok((id, self.by_id(id).await?))
    }

    async fn register_new(
        &self,
        key: (String, &'static str, String),
    ) -> Result<u32, MessagingError> {
        let registered = self
            .registry()?
            .register_schema(registry::RegisterSchemaRequest {
                subject: key.0.clone(),
                schema_type: key.1.to_owned(),
                schema: key.2.clone(),
                ..Default::default()
            })
            .await
            .map_err(registry_error)?
            .into_inner();
        let id = registered.id as u32;
        self.registered.insert(key, id);
        Ok(id)
    }

    /// A schema given by a client, a consumer's reader schema or a producer's inline schema
    /// (no references), within the budgets.
    pub fn reader(&self, text: &str) -> Result<Arc<Schema>, MessagingError> {
        if let Some(schema) = self.readers.get(text) {
            return Ok(schema);
        }
        let schema = Arc::new(parse_client_schema(text, &self.limits)?);
        self.readers.insert(text.to_owned(), Arc::clone(&schema));
        Ok(schema)
    }

    /// A JSON Schema given by a producer (no references), within the budgets.
    pub fn json_reader(&self, text: &str) -> Result<Arc<JsonSchema>, MessagingError> {
        if let Some(schema) = self.json_readers.get(text) {
            return Ok(schema);
        }
        let schema = Arc::new(parse_client_json_schema(text, &self.limits)?);
        self.json_readers
            .insert(text.to_owned(), Arc::clone(&schema));
        Ok(schema)
    }

    /// A .proto text given by a producer (no references), within the budgets.
    pub fn proto_reader(&self, text: &str) -> Result<Arc<ProtoSchema>, MessagingError> {
        if let Some(schema) = self.proto_readers.get(text) {
            return Ok(schema);
        }
        let schema = Arc::new(parse_client_proto(text, &self.limits)?);
        self.proto_readers
            .insert(text.to_owned(), Arc::clone(&schema));
        Ok(schema)
    }

    /// The names and texts of the schemas a schema references, transitively, dependencies
    /// first, each once: a depth-first walk of the reference graph that fetches a referenced version the
    /// first time it is met (a diamond of references costs its edges, not its paths: 2^(D+1)
    /// registry calls before, for depth D). At most `Limits::references` schemas, nested at
    /// most `Limits::reference_depth` deep.
    async fn reference_texts(
        &self,
        references: Vec<registry::SchemaReference>,
    ) -> Result<Vec<(String, String)>, MessagingError> {
        let limits = &self.limits;
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut seen_texts: HashSet<(String, String)> = HashSet::new();
        let mut done: HashSet<(String, i32)> = HashSet::new();
        let mut met: HashSet<(String, i32)> = HashSet::new();
        // (reference, depth, its references already pushed)
        let mut stack: Vec<(registry::SchemaReference, usize, bool)> = references
            .into_iter()
            .rev()
            .map(|r| (r, 1, false))
            .collect();
        while let Some((reference, depth, expanded)) = stack.pop() {
            let key = (reference.subject.clone(), reference.version);
            if done.contains(&key) {
                continue;
            }
            if depth > limits.reference_depth {
                return Err(over_references(
                    Limit::ReferenceDepth,
                    limits.reference_depth,
                    &reference,
                ));
            }
            let found = self.referenced_version(&reference).await?;
            if expanded {
                done.insert(key);
                let named = (reference.name.clone(), found.0.clone());
                if seen_texts.insert(named.clone()) {
                    texts.push(named);
                }
                continue;
            }
            // Met before but not done: a cycle walks on until the depth budget stops it.
            if met.insert(key) && met.len() > limits.references {
                return Err(over_references(
                    Limit::References,
                    limits.references,
                    &reference,
                ));
            }
            stack.push((reference, depth, true));
            for child in found.1.iter().rev() {
                stack.push((child.clone(), depth.saturating_add(1), false));
            }
        }
        Ok(texts)
    }

    /// The text and references of a referenced version, fetched once (versions never change).
    async fn referenced_version(
        &self,
        reference: &registry::SchemaReference,
    ) -> Result<Arc<Referenced>, MessagingError> {
        let key = (reference.subject.clone(), reference.version);
        if let Some(found) = self.referenced.get(&key) {
            return Ok(found);
        }
        let found = self
            .registry()?
            .get_subject_version(registry::GetSubjectVersionRequest {
                subject: reference.subject.clone(),
                version: reference.version,
                include_deleted: true,
            })
            .await
            .map_err(registry_error)?
            .into_inner()
            .subject_version
            .ok_or_else(|| MessagingError::Registry {
                code: Code::Internal,
                message: "the registry answered without a subject version".to_owned(),
                answered: false,
            })?;
        let found = Arc::new((found.schema, found.references));
        // "latest" (0 or -1) moves; a version number does not.
        if reference.version > 0 {
            self.referenced.insert(key, Arc::clone(&found));
        }
        Ok(found)
    }
}

/// A schema's references over a budget.
fn over_references(limit: Limit, max: usize, at: &registry::SchemaReference) -> MessagingError {
    MessagingError::OverLimit {
        source: LimitExceeded {
            limit,
            max: u64::try_from(max).unwrap_or(u64::MAX),
            what: format!(
                "the references of the schema (at '{}', subject '{}' version {})",
                at.name, at.subject, at.version
            ),
        },
        context: "schema".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas(limits: Limits) -> Schemas {
        // Never called: these tests parse client schemas only.
        let channel = tributary_security::client::channel("http://127.0.0.1:9", None, |e| e)
            .expect("a lazy channel");
        Schemas::new(channel, Default::default(), Duration::from_secs(1)).with_limits(limits)
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_answered_from_the_last_known_latest_within_the_staleness() {
        // Port 9 (discard) refuses connections: the registry is unreachable.
        let schemas = schemas(Limits::default()).with_latest_max_stale(Duration::from_secs(60));
        let parsed = Arc::new(Schema::parse(r#""string""#, &[]).expect("a schema"));
        schemas.by_id.insert(7, WriterSchema::Avro(parsed));
        let now = Instant::now();
        let entry = |age: u64| LatestEntry {
            id: 7,
            fetched: now - Duration::from_secs(age),
            fresh_until: now - Duration::from_secs(1),
        };
        schemas.latest.insert("recent".to_owned(), entry(10));
        schemas.latest.insert("too-old".to_owned(), entry(120));

        let (id, _) = schemas
            .by_subject_version("recent", -1)
            .await
            .expect("served stale");
        assert_eq!(id, 7);
        assert_eq!(schemas.stale_latest_served().load(Ordering::Relaxed), 1);
        // Not asked again for the TTL: the next lookup is fresh from the cache.
        let refreshed = schemas.latest.get("recent").expect("kept");
        assert!(refreshed.fresh_until > Instant::now());
        assert_eq!(refreshed.fetched, now - Duration::from_secs(10));

        let error = schemas
            .by_subject_version("too-old", -1)
            .await
            .expect_err("past the staleness allowed");
        assert!(error.is_registry_unreachable(), "{error:?}");
        let error = schemas
            .by_subject_version("never-seen", 0)
            .await
            .expect_err("nothing known");
        assert!(error.is_registry_unreachable(), "{error:?}");
        assert_eq!(schemas.stale_latest_served().load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn client_schemas_are_held_to_the_budgets_naming_the_flags() {
        let schemas = schemas(Limits {
            schema_bytes: 100,
            enum_symbols: 2,
            ..Limits::default()
        });
        let big = format!(r#"{{"type":"string","doc":"{}"}}"#, "x".repeat(200));
        let error = schemas.reader(&big).expect_err("over the size budget");
        assert_eq!(error.grpc_code(), Code::InvalidArgument);
        assert_eq!(error.reason(), "LIMIT_EXCEEDED");
        assert!(
            error
                .to_string()
                .contains("--max-schema-bytes (MESSAGING_MAX_SCHEMA_BYTES)"),
            "{error}"
        );
        let error = schemas
            .reader(r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#)
            .expect_err("three symbols");
        assert!(
            error
                .to_string()
                .contains("--max-enum-symbols (MESSAGING_MAX_ENUM_SYMBOLS)"),
            "{error}"
        );
        let error = schemas.reader("{").expect_err("not JSON");
        assert_eq!(error.reason(), "INVALID_SCHEMA");
        assert!(
            schemas
                .reader(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#)
                .is_ok()
        );
    }
}
