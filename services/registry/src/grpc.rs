//! The `tributary.registry.v1.RegistryService` gRPC API: validation of wire values, the
//! caller's permission ([`Access`]), and mapping between protobuf messages and the registry
//! core. No behaviour lives here.

#![warn(clippy::arithmetic_side_effects)]

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tributary_avro::compat::CompatibilityLevel;
use tributary_proto::registry::v1 as pb;
use tributary_proto::registry::v1::registry_service_server::RegistryService;
use tributary_security::authz::{Action, Caller};

use crate::access::Access;
use crate::error::RegistryError;
use crate::events::Event;
use crate::model::{Mode, Reference, SubjectVersion, VersionSelector};
use crate::registry::{CompatibilityReport, RegisterRequest, Registered, Registry};
use crate::store::SubjectFilter;

/// The gRPC front of a [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryGrpc {
    registry: Arc<Registry>,
    access: Access,
    /// Cancelled at shutdown: ends `Watch` streams so the server can drain.
    stop: CancellationToken,
}

impl RegistryGrpc {
    pub fn new(registry: Arc<Registry>, access: Access, stop: CancellationToken) -> Self {
        Self {
            registry,
            access,
            stop,
        }
    }
}

/// The caller of a request, and its message.
fn split<T>(request: Request<T>) -> (Caller, T) {
    let caller = Caller::from_extensions(request.extensions());
    (caller, request.into_inner())
}

/// The action a delete needs.
fn delete_action(permanent: bool) -> Action {
    if permanent {
        Action::DeletePermanent
    } else {
        Action::Delete
    }
}

pub fn references_from_wire(references: Vec<pb::SchemaReference>) -> Vec<Reference> {
    references
        .into_iter()
        .map(|r| Reference {
            name: r.name,
            subject: r.subject,
            version: r.version,
        })
        .collect()
}

fn references_to_wire(references: &[Reference]) -> Vec<pb::SchemaReference> {
    references
        .iter()
        .map(|r| pb::SchemaReference {
            name: r.name.clone(),
            subject: r.subject.clone(),
            version: r.version,
        })
        .collect()
}

fn subject_version_to_wire(found: SubjectVersion) -> pb::SubjectVersion {
    pb::SubjectVersion {
        subject: found.subject,
        version: found.version,
        id: found.id,
        schema: found.schema.text.clone(),
        schema_type: found.schema.schema_type.as_str().to_owned(),
        references: references_to_wire(&found.schema.references),
        deleted: found.deleted,
    }
}

pub fn level_from_wire(level: i32) -> Result<CompatibilityLevel, RegistryError> {
    let level = pb::CompatibilityLevel::try_from(level).map_err(|_| {
        RegistryError::InvalidCompatibilityLevel {
            value: level.to_string(),
        }
    })?;
    Ok(match level {
        pb::CompatibilityLevel::Unspecified => {
            return Err(RegistryError::InvalidCompatibilityLevel {
                value: "COMPATIBILITY_LEVEL_UNSPECIFIED".to_owned(),
            });
        }
        pb::CompatibilityLevel::None => CompatibilityLevel::None,
        pb::CompatibilityLevel::Backward => CompatibilityLevel::Backward,
        pb::CompatibilityLevel::BackwardTransitive => CompatibilityLevel::BackwardTransitive,
        pb::CompatibilityLevel::Forward => CompatibilityLevel::Forward,
        pb::CompatibilityLevel::ForwardTransitive => CompatibilityLevel::ForwardTransitive,
        pb::CompatibilityLevel::Full => CompatibilityLevel::Full,
        pb::CompatibilityLevel::FullTransitive => CompatibilityLevel::FullTransitive,
    })
}

pub fn level_to_wire(level: CompatibilityLevel) -> i32 {
    let level = match level {
        CompatibilityLevel::None => pb::CompatibilityLevel::None,
        CompatibilityLevel::Backward => pb::CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive => pb::CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward => pb::CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive => pb::CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full => pb::CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive => pb::CompatibilityLevel::FullTransitive,
    };
    level as i32
}

fn level_name_to_wire(level: Option<&str>) -> i32 {
    level
        .and_then(CompatibilityLevel::parse)
        .map_or(pb::CompatibilityLevel::Unspecified as i32, level_to_wire)
}

pub fn mode_from_wire(mode: i32) -> Result<Mode, RegistryError> {
    match pb::Mode::try_from(mode) {
        Ok(pb::Mode::Readwrite) => Ok(Mode::ReadWrite),
        Ok(pb::Mode::Readonly) => Ok(Mode::ReadOnly),
        Ok(pb::Mode::Import) => Ok(Mode::Import),
        Ok(pb::Mode::Unspecified) => Err(RegistryError::InvalidMode {
            value: "MODE_UNSPECIFIED".to_owned(),
        }),
        Err(_) => Err(RegistryError::InvalidMode {
            value: mode.to_string(),
        }),
    }
}

pub fn mode_to_wire(mode: Mode) -> i32 {
    match mode {
        Mode::ReadWrite => pb::Mode::Readwrite as i32,
        Mode::ReadOnly => pb::Mode::Readonly as i32,
        Mode::Import => pb::Mode::Import as i32,
    }
}

fn mode_name_to_wire(mode: Option<&str>) -> i32 {
    mode.and_then(Mode::parse)
        .map_or(pb::Mode::Unspecified as i32, mode_to_wire)
}

fn event_to_wire(event: Event) -> pb::WatchResponse {
    use pb::watch_response::Event as Wire;
    let event = match event {
        Event::SchemaRegistered {
            subject,
            version,
            id,
        } => Wire::SchemaRegistered(pb::SchemaRegistered {
            subject,
            version,
            id,
        }),
        Event::VersionDeleted {
            subject,
            version,
            permanent,
        } => Wire::VersionDeleted(pb::VersionDeleted {
            subject,
            version,
            permanent,
        }),
        Event::CompatibilityChanged { subject, level } => {
            Wire::CompatibilityLevelChanged(pb::CompatibilityLevelChanged {
                subject,
                level: level_name_to_wire(level.as_deref()),
            })
        }
        Event::ModeChanged { subject, mode } => Wire::ModeChanged(pb::ModeChanged {
            subject,
            mode: mode_name_to_wire(mode.as_deref()),
        }),
        Event::Resync => Wire::Resync(pb::Resync {}),
    };
    pb::WatchResponse { event: Some(event) }
}

/// Decodes ListSubjects' opaque page token (the hex of the last subject returned).
pub fn decode_page_token(token: &str) -> Result<String, RegistryError> {
    let invalid = || RegistryError::InvalidArgument {
        field: "page_token",
        reason: "not a token this registry issued".to_owned(),
    };
    if !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i.saturating_add(2))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// ListSubjects' request, checked: which subjects, after which one (its page token), how many.
pub fn list_subjects_from_wire(
    request: &pb::ListSubjectsRequest,
) -> Result<(SubjectFilter, String, i32), RegistryError> {
    if request.page_size < 0 {
        return Err(RegistryError::InvalidArgument {
            field: "page_size",
            reason: "must not be negative".to_owned(),
        });
    }
    let filter = match (request.deleted_only, request.include_deleted) {
        (true, _) => SubjectFilter::DeletedOnly,
        (false, true) => SubjectFilter::All,
        (false, false) => SubjectFilter::Live,
    };
    let after = decode_page_token(&request.page_token)?;
    let page_size = if request.page_size == 0 {
        crate::registry::MAX_PAGE_SIZE
    } else {
        request.page_size
    };
    Ok((filter, after, page_size))
}

/// CheckCompatibility's answer.
pub fn compatibility_to_wire(report: &CompatibilityReport) -> pb::CheckCompatibilityResponse {
    pb::CheckCompatibilityResponse {
        is_compatible: report.is_compatible(),
        total_incompatibilities: i64::try_from(report.total).unwrap_or(i64::MAX),
        level: level_to_wire(report.level),
        incompatibilities: report
            .issues
            .iter()
            .map(|issue| pb::Incompatibility {
                version: issue.version,
                direction: issue.direction.to_owned(),
                kind: issue.kind.clone(),
                location: issue.location.clone(),
                message: issue.message.clone(),
                description: issue.description(),
            })
            .collect(),
    }
}

/// ListSubjects' page token after `subject` (the hex of its bytes).
pub fn encode_page_token(subject: &str) -> String {
    subject.bytes().map(|b| format!("{b:02x}")).collect()
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryService for RegistryGrpc {
    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "RegisterSchema", subject = %request.get_ref().subject))]
    async fn register_schema(
        &self,
        request: Request<pb::RegisterSchemaRequest>,
    ) -> Result<Response<pb::RegisterSchemaResponse>, Status> {
        let (caller, request) = split(request);
        // Giving the id is an IMPORT-mode write: a permission of its own.
        let action = if request.id != 0 {
            Action::Import
        } else {
            Action::Write
        };
        let subject = request.subject.clone();
        let registered = self
            .access
            .change_if(
                &caller,
                action,
                &subject,
                self.registry.register(RegisterRequest {
                    subject: request.subject,
                    schema: request.schema,
                    schema_type: request.schema_type,
                    references: references_from_wire(request.references),
                    normalize: request.normalize,
                    id: (request.id != 0).then_some(request.id),
                    version: (request.version != 0).then_some(request.version),
                }),
                |registered: &Registered| registered.created,
            )
            .await?;
        Ok(Response::new(pb::RegisterSchemaResponse {
            id: registered.id,
            version: registered.version,
            schema: registered.schema,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "LookupSchema", subject = %request.get_ref().subject))]
    async fn lookup_schema(
        &self,
        request: Request<pb::LookupSchemaRequest>,
    ) -> Result<Response<pb::LookupSchemaResponse>, Status> {
        let (caller, request) = split(request);
        self.access
            .require(&caller, Action::Read, &request.subject)?;
        let references = references_from_wire(request.references);
        let found = self
            .registry
            .lookup(
                &request.subject,
                &request.schema,
                &request.schema_type,
                &references,
                request.normalize,
                request.include_deleted,
            )
            .await?;
        Ok(Response::new(pb::LookupSchemaResponse {
            subject_version: Some(subject_version_to_wire(found)),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "GetSchema", id = request.get_ref().id))]
    async fn get_schema(
        &self,
        request: Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        let (caller, request) = split(request);
        self.access.require_schema(&caller, request.id).await?;
        let schema = self.registry.schema_by_id(request.id).await?;
        let format = request.format.trim();
        let text = if format.is_empty() || format.eq_ignore_ascii_case("default") {
            schema.text.clone()
        } else {
            self.registry
                .formatted_text(&schema, format)
                .await?
                .ok_or_else(|| RegistryError::InvalidArgument {
                    field: "format",
                    reason: format!(
                        "'{}' is not a format of {} schemas (use {})",
                        format.chars().take(64).collect::<String>().escape_debug(),
                        schema.schema_type,
                        schema.schema_type.formats()
                    ),
                })?
        };
        Ok(Response::new(pb::GetSchemaResponse {
            id: schema.id,
            schema: text,
            schema_type: schema.schema_type.as_str().to_owned(),
            references: references_to_wire(&schema.references),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "ListSchemaUsages", id = request.get_ref().id))]
    async fn list_schema_usages(
        &self,
        request: Request<pb::ListSchemaUsagesRequest>,
    ) -> Result<Response<pb::ListSchemaUsagesResponse>, Status> {
        let (caller, request) = split(request);
        let usages = self
            .registry
            .schema_usages(request.id, request.include_deleted)
            .await?;
        Ok(Response::new(pb::ListSchemaUsagesResponse {
            usages: usages
                .into_iter()
                .filter(|(subject, _)| self.access.can_read(&caller, subject))
                .map(|(subject, version)| pb::SubjectVersionRef { subject, version })
                .collect(),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "GetSubjectVersion", subject = %request.get_ref().subject, version = request.get_ref().version))]
    async fn get_subject_version(
        &self,
        request: Request<pb::GetSubjectVersionRequest>,
    ) -> Result<Response<pb::GetSubjectVersionResponse>, Status> {
        let (caller, request) = split(request);
        self.access
            .require(&caller, Action::Read, &request.subject)?;
        let selector = VersionSelector::from_wire(request.version)?;
        let found = self
            .registry
            .find_version(&request.subject, selector, request.include_deleted)
            .await?;
        Ok(Response::new(pb::GetSubjectVersionResponse {
            subject_version: Some(subject_version_to_wire(found)),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "ListSubjects"))]
    async fn list_subjects(
        &self,
        request: Request<pb::ListSubjectsRequest>,
    ) -> Result<Response<pb::ListSubjectsResponse>, Status> {
        let (caller, request) = split(request);
        let (filter, after, page_size) = list_subjects_from_wire(&request)?;
        let subjects = if self.access.reads_everything(&caller) {
            self.registry
                .list_subjects(&request.subject_prefix, filter, &after, page_size)
                .await?
        } else {
            self.visible_subjects(&caller, &request.subject_prefix, filter, after, page_size)
                .await?
        };
        let next_page_token = match subjects.last() {
            Some(last)
                if subjects.len() >= page_size.min(crate::registry::MAX_PAGE_SIZE) as usize =>
            {
                encode_page_token(last)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListSubjectsResponse {
            subjects,
            next_page_token,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "ListVersions", subject = %request.get_ref().subject))]
    async fn list_versions(
        &self,
        request: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let (caller, request) = split(request);
        self.access
            .require(&caller, Action::Read, &request.subject)?;
        let versions = self
            .registry
            .list_versions(&request.subject, request.include_deleted)
            .await?;
        Ok(Response::new(pb::ListVersionsResponse { versions }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "ListReferencedBy", subject = %request.get_ref().subject))]
    async fn list_referenced_by(
        &self,
        request: Request<pb::ListReferencedByRequest>,
    ) -> Result<Response<pb::ListReferencedByResponse>, Status> {
        let (caller, request) = split(request);
        self.access
            .require(&caller, Action::Read, &request.subject)?;
        let selector = VersionSelector::from_wire(request.version)?;
        let ids = self
            .registry
            .referenced_by(&request.subject, selector)
            .await?;
        Ok(Response::new(pb::ListReferencedByResponse { ids }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "DeleteSubject", subject = %request.get_ref().subject))]
    async fn delete_subject(
        &self,
        request: Request<pb::DeleteSubjectRequest>,
    ) -> Result<Response<pb::DeleteSubjectResponse>, Status> {
        let (caller, request) = split(request);
        let versions = self
            .access
            .change(
                &caller,
                delete_action(request.permanent),
                &request.subject,
                self.registry
                    .delete_subject(&request.subject, request.permanent),
            )
            .await?;
        Ok(Response::new(pb::DeleteSubjectResponse { versions }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "DeleteSubjectVersion", subject = %request.get_ref().subject))]
    async fn delete_subject_version(
        &self,
        request: Request<pb::DeleteSubjectVersionRequest>,
    ) -> Result<Response<pb::DeleteSubjectVersionResponse>, Status> {
        let (caller, request) = split(request);
        let selector = VersionSelector::from_wire(request.version)?;
        let version = self
            .access
            .change(
                &caller,
                delete_action(request.permanent),
                &request.subject,
                self.registry
                    .delete_version(&request.subject, selector, request.permanent),
            )
            .await?;
        Ok(Response::new(pb::DeleteSubjectVersionResponse { version }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "CheckCompatibility", subject = %request.get_ref().subject))]
    async fn check_compatibility(
        &self,
        request: Request<pb::CheckCompatibilityRequest>,
    ) -> Result<Response<pb::CheckCompatibilityResponse>, Status> {
        let (caller, request) = split(request);
        self.access
            .require(&caller, Action::Read, &request.subject)?;
        let version = match request.version {
            0 => None,
            other => Some(VersionSelector::from_wire(other)?),
        };
        let references = references_from_wire(request.references);
        let report = self
            .registry
            .check_compatibility(
                &request.subject,
                &request.schema,
                &request.schema_type,
                &references,
                version,
                request.normalize,
            )
            .await?;
        Ok(Response::new(compatibility_to_wire(&report)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "GetCompatibilityLevel", subject = %request.get_ref().subject))]
    async fn get_compatibility_level(
        &self,
        request: Request<pb::GetCompatibilityLevelRequest>,
    ) -> Result<Response<pb::GetCompatibilityLevelResponse>, Status> {
        let (caller, request) = split(request);
        if !request.subject.is_empty() {
            self.access
                .require(&caller, Action::Read, &request.subject)?;
        }
        let level = self
            .registry
            .compatibility_level(&request.subject, request.default_to_global)
            .await?;
        Ok(Response::new(pb::GetCompatibilityLevelResponse {
            level: level_to_wire(level),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "SetCompatibilityLevel", subject = %request.get_ref().subject))]
    async fn set_compatibility_level(
        &self,
        request: Request<pb::SetCompatibilityLevelRequest>,
    ) -> Result<Response<pb::SetCompatibilityLevelResponse>, Status> {
        let (caller, request) = split(request);
        let level = level_from_wire(request.level)?;
        let level = self
            .access
            .change(
                &caller,
                Action::Config,
                &request.subject,
                self.registry
                    .set_compatibility_level(&request.subject, level),
            )
            .await?;
        Ok(Response::new(pb::SetCompatibilityLevelResponse {
            level: level_to_wire(level),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "DeleteCompatibilityLevel", subject = %request.get_ref().subject))]
    async fn delete_compatibility_level(
        &self,
        request: Request<pb::DeleteCompatibilityLevelRequest>,
    ) -> Result<Response<pb::DeleteCompatibilityLevelResponse>, Status> {
        let (caller, request) = split(request);
        let level = self
            .access
            .change(
                &caller,
                Action::Config,
                &request.subject,
                self.registry.delete_compatibility_level(&request.subject),
            )
            .await?;
        Ok(Response::new(pb::DeleteCompatibilityLevelResponse {
            level: level_to_wire(level),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "GetMode", subject = %request.get_ref().subject))]
    async fn get_mode(
        &self,
        request: Request<pb::GetModeRequest>,
    ) -> Result<Response<pb::GetModeResponse>, Status> {
        let (caller, request) = split(request);
        if !request.subject.is_empty() {
            self.access
                .require(&caller, Action::Read, &request.subject)?;
        }
        let mode = self
            .registry
            .mode(&request.subject, request.default_to_global)
            .await?;
        Ok(Response::new(pb::GetModeResponse {
            mode: mode_to_wire(mode),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "SetMode", subject = %request.get_ref().subject))]
    async fn set_mode(
        &self,
        request: Request<pb::SetModeRequest>,
    ) -> Result<Response<pb::SetModeResponse>, Status> {
        let (caller, request) = split(request);
        let mode = mode_from_wire(request.mode)?;
        let mode = self
            .access
            .change(
                &caller,
                Action::Config,
                &request.subject,
                self.registry
                    .set_mode(&request.subject, mode, request.force),
            )
            .await?;
        Ok(Response::new(pb::SetModeResponse {
            mode: mode_to_wire(mode),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "DeleteMode", subject = %request.get_ref().subject))]
    async fn delete_mode(
        &self,
        request: Request<pb::DeleteModeRequest>,
    ) -> Result<Response<pb::DeleteModeResponse>, Status> {
        let (caller, request) = split(request);
        let mode = self
            .access
            .change(
                &caller,
                Action::Config,
                &request.subject,
                self.registry.delete_mode(&request.subject),
            )
            .await?;
        Ok(Response::new(pb::DeleteModeResponse {
            mode: mode_to_wire(mode),
        }))
    }

    type WatchStream = WatchStream;

    #[tracing::instrument(level = "debug", skip_all, fields(rpc.method = "Watch", prefix = %request.get_ref().subject_prefix))]
    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (caller, request) = split(request);
        let prefix = request.subject_prefix;
        let mut events = self.registry.subscribe();
        let stop = self.stop.clone();
        let access = self.access.clone();
        let stream = async_stream_from(move |sender| async move {
            loop {
                let received = tokio::select! {
                    () = stop.cancelled() => {
                        let _ = sender.send(Err(Status::unavailable("the registry is shutting down; reconnect to another replica"))).await;
                        return;
                    }
                    received = events.recv() => received,
                };
                let event = match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "watcher fell behind; sending resync");
                        Event::Resync
                    }
                    Err(RecvError::Closed) => return,
                };
                // Only the events of subjects with the prefix that the caller may read (global
                // level and mode changes, which anyone may read, and resyncs, always).
                if event.subject().is_some_and(|subject| {
                    !subject.starts_with(prefix.as_str()) || !access.can_read(&caller, subject)
                }) {
                    continue;
                }
                if sender.send(Ok(event_to_wire(event))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

impl RegistryGrpc {
    /// A page of `page_size` subjects after `after` that `caller` may read: pages of the store
    /// are read and filtered until the page is full or the subjects run out.
    async fn visible_subjects(
        &self,
        caller: &Caller,
        prefix: &str,
        filter: SubjectFilter,
        mut after: String,
        page_size: i32,
    ) -> Result<Vec<String>, RegistryError> {
        let wanted = page_size.clamp(1, crate::registry::MAX_PAGE_SIZE) as usize;
        let mut visible = Vec::new();
        loop {
            let page = self
                .registry
                .list_subjects(prefix, filter, &after, page_size)
                .await?;
            let exhausted = page.len() < wanted;
            if let Some(last) = page.last() {
                after = last.clone();
            }
            visible.extend(
                page.into_iter()
                    .filter(|subject| self.access.can_read(caller, subject)),
            );
            if exhausted || visible.len() >= wanted {
                visible.truncate(wanted);
                return Ok(visible);
            }
        }
    }
}

/// A stream fed by a task; the task ends when the receiver is dropped.
fn async_stream_from<F, Fut>(producer: F) -> WatchStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::WatchResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(producer(sender));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = encode_page_token("orders-välue");
        assert_eq!(
            decode_page_token(&token).ok().as_deref(),
            Some("orders-välue")
        );
        assert!(decode_page_token("zz").is_err());
        assert!(decode_page_token("abc").is_err());
        assert_eq!(decode_page_token("").ok().as_deref(), Some(""));
    }

    #[test]
    fn out_of_range_levels_and_modes_are_invalid_arguments() {
        assert!(matches!(
            level_from_wire(99),
            Err(RegistryError::InvalidCompatibilityLevel { .. })
        ));
        assert!(matches!(
            level_from_wire(0),
            Err(RegistryError::InvalidCompatibilityLevel { .. })
        ));
        assert!(matches!(
            mode_from_wire(-1),
            Err(RegistryError::InvalidMode { .. })
        ));
        for level in 1..=7 {
            let parsed = level_from_wire(level).expect("valid level");
            assert_eq!(level_to_wire(parsed), level);
        }
    }
}
