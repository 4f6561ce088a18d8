//! Schemas, resolved through the registry's gRPC API and cached:
//!
//! - id -> parsed schema, forever (a registry's ids are immutable);
//! - subject + version -> id, forever (versions are immutable);
//! - subject -> latest version, for a short TTL (`--latest-schema-ttl-ms`);
//! - (subject, schema text) -> id for producers' inline schemas, forever;
//! - reader schema text -> parsed schema, forever.

#![warn(clippy::arithmetic_side_effects)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tonic::Code;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use tributary_avro::Schema;
use tributary_proto::registry::v1 as registry;
use tributary_proto::registry::v1::registry_service_client::RegistryServiceClient;
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
    by_id: Cache<u32, Arc<Schema>>,
    versions: Cache<(String, i32), u32>,
    latest: Cache<String, u32>,
    registered: Cache<(String, String), u32>,
    readers: Cache<String, Arc<Schema>>,
}

/// The schema of the id a run of records looked up last ([`Schemas::by_id_remembered`]).
#[derive(Debug, Default)]
pub struct LastSchema(Option<(u32, Arc<Schema>)>);

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

fn parse(text: &str, references: &[String]) -> Result<Schema, MessagingError> {
    let references: Vec<&str> = references.iter().map(String::as_str).collect();
    Schema::parse(text, &references).map_err(|error| MessagingError::InvalidSchema {
        reason: error.to_string(),
    })
}

impl Schemas {
    /// A client of the registry over `channel` (connected lazily: the service starts while the
    /// registry is down, and reports NOT_SERVING until it answers), calling with `credentials`.
    pub fn new(channel: Channel, credentials: CallCredentials, latest_ttl: Duration) -> Self {
        let channel = InterceptedService::new(channel, RegistryCall { credentials });
        Self {
            client: RegistryServiceClient::new(channel.clone()),
            channel,
            by_id: Cache::builder().max_capacity(10_000).build(),
            versions: Cache::builder().max_capacity(10_000).build(),
            latest: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(latest_ttl)
                .build(),
            registered: Cache::builder().max_capacity(10_000).build(),
            readers: Cache::builder().max_capacity(1_000).build(),
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
    pub async fn by_id(&self, id: u32) -> Result<Arc<Schema>, MessagingError> {
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
    ) -> Result<Arc<Schema>, MessagingError> {
        if let Some((last_id, schema)) = &last.0
            && *last_id == id
        {
            return Ok(Arc::clone(schema));
        }
        let schema = self.by_id(id).await?;
        last.0 = Some((id, Arc::clone(&schema)));
        Ok(schema)
    }

    async fn fetch_by_id(&self, id: u32) -> Result<Arc<Schema>, MessagingError> {
        let wire_id = i32::try_from(id)
            .map_err(|_| MessagingError::invalid("schema_id", format!("{id} is out of range")))?;
        let found = self
            .client
            .clone()
            .get_schema(registry::GetSchemaRequest { id: wire_id })
            .await
            .map_err(registry_error)?
            .into_inner();
        let references = self.reference_texts(found.references).await?;
        let schema = Arc::new(parse(&found.schema, &references)?);
        self.by_id.insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    /// A version of a subject (0 or -1: the latest, cached for the TTL).
    pub async fn by_subject_version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<(u32, Arc<Schema>), MessagingError> {
        let latest = version == 0 || version == -1;
        let cached = if latest {
            self.latest.get(subject)
        } else {
            self.versions.get(&(subject.to_owned(), version))
        };
        let id = match cached {
            Some(id) => id,
            None => Box::pin(self.fetch_subject_version(subject, version, latest)).await?,
        };
        Ok((id, self.by_id(id).await?))
    }

    async fn fetch_subject_version(
        &self,
        subject: &str,
        version: i32,
        latest: bool,
    ) -> Result<u32, MessagingError> {
        let found = self
            .client
            .clone()
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
            self.latest.insert(subject.to_owned(), id);
        }
        self.versions
            .insert((subject.to_owned(), found.version), id);
        Ok(id)
    }

    /// Registers a schema under a subject (a lookup when it is registered already) and returns
    /// its id.
    pub async fn register(
        &self,
        subject: &str,
        text: &str,
    ) -> Result<(u32, Arc<Schema>), MessagingError> {
        let key = (subject.to_owned(), text.to_owned());
        let id = match self.registered.get(&key) {
            Some(id) => id,
            None => Box::pin(self.register_new(key)).await?,
        };
        Ok((id, self.by_id(id).await?))
    }

    async fn register_new(&self, key: (String, String)) -> Result<u32, MessagingError> {
        let registered = self
            .client
            .clone()
            .register_schema(registry::RegisterSchemaRequest {
                subject: key.0.clone(),
                schema: key.1.clone(),
                ..Default::default()
            })
            .await
            .map_err(registry_error)?
            .into_inner();
        let id = registered.id as u32;
        self.registered.insert(key, id);
        Ok(id)
    }

    /// A reader schema given by a consumer (no references).
    pub fn reader(&self, text: &str) -> Result<Arc<Schema>, MessagingError> {
        if let Some(schema) = self.readers.get(text) {
            return Ok(schema);
        }
        let schema = Arc::new(parse(text, &[])?);
        self.readers.insert(text.to_owned(), Arc::clone(&schema));
        Ok(schema)
    }

    /// The texts of the schemas a schema references, dependencies first.
    fn reference_texts(
        &self,
        references: Vec<registry::SchemaReference>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<String>, MessagingError>> + Send + '_>> {
        Box::pin(async move {
            let mut texts: Vec<String> = Vec::new();
            for reference in references {
                let found = self
                    .client
                    .clone()
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
                for text in self.reference_texts(found.references).await? {
                    if !texts.contains(&text) {
                        texts.push(text);
                    }
                }
                if !texts.contains(&found.schema) {
                    texts.push(found.schema);
                }
            }
            Ok(texts)
        })
    }
}
