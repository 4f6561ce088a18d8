//! The `tributary.messaging.v1.MessagingService` gRPC API: validation of wire values, the
//! caller's permission ([`Access`]), and mapping to the produce, consume and admin code. No
//! behaviour lives here.

#![warn(clippy::arithmetic_side_effects)]

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use tributary_proto::messaging::v1 as pb;
use tributary_proto::messaging::v1::messaging_service_server::MessagingService;
use tributary_security::authz::{Action, Caller, Resource};

use crate::access::Access;
use crate::error::MessagingError;
use crate::kafka::Kafka;
use crate::metrics::MessagingMetrics;
use crate::produce::{Producer, Recent, results_to_wire};
use crate::schemas::Schemas;
use crate::{consume, produce};

/// The gRPC front of the service.
#[derive(Debug, Clone)]
pub struct MessagingGrpc {
    kafka: Kafka,
    schemas: Arc<Schemas>,
    access: Access,
    producer: Producer,
    metrics: MessagingMetrics,
    produce_max_in_flight: usize,
    /// A place per open Consume stream (each holds a Kafka consumer: threads and descriptors),
    /// shared with the REST API's consumer instances, and how many there are.
    consume_streams: Arc<Semaphore>,
    max_consume_streams: usize,
    /// Cancelled at shutdown: ends streams so the server can drain.
    stop: CancellationToken,
    /// The server's limit on a unary call (`--request-timeout-ms`), if any.
    request_timeout: Option<std::time::Duration>,
}

impl MessagingGrpc {
    pub fn new(
        kafka: Kafka,
        schemas: Arc<Schemas>,
        access: Access,
        metrics: MessagingMetrics,
        produce_max_in_flight: usize,
        consume_places: (Arc<Semaphore>, usize),
        stop: CancellationToken,
    ) -> Self {
        let (consume_streams, max_consume_streams) = consume_places;
        Self {
            producer: Producer::new(
                kafka.clone(),
                Arc::clone(&schemas),
                access.clone(),
                metrics.clone(),
            ),
            metrics,
            kafka,
            schemas,
            access,
            produce_max_in_flight: produce_max_in_flight.max(1),
            consume_streams,
            max_consume_streams,
            stop,
            request_timeout: None,
        }
    }

    /// Unary calls are answered before the server's own limit on them, `timeout`.
    pub fn with_request_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// A request's string field that must not be empty.
pub fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, MessagingError> {
    if value.is_empty() {
        Err(MessagingError::invalid(field, "required"))
    } else {
        Ok(value)
    }
}

/// A CreateTopic request, checked before Kafka is asked: a topic name, and partitions and
/// replication factor not negative (0: the broker's default).
pub fn check_create_topic(request: &pb::CreateTopicRequest) -> Result<(), MessagingError> {
    required("topic", &request.topic)?;
    if request.partitions < 0 {
        return Err(MessagingError::invalid("partitions", "must be >= 0"));
    }
    if request.replication_factor < 0 {
        return Err(MessagingError::invalid(
            "replication_factor",
            "must be >= 0",
        ));
    }
    Ok(())
}

/// The caller of a request, and its message.
fn split<T>(request: Request<T>) -> (Caller, T) {
    let caller = Caller::from_extensions(request.extensions());
    (caller, request.into_inner())
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl MessagingService for MessagingGrpc {
    #[tracing::instrument(skip_all, fields(records = request.get_ref().records.len()))]
    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        if self.stop.is_cancelled() {
            return Err(MessagingError::ShuttingDown.into());
        }
        let answer_by = produce::answer_deadline(
            tokio::time::Instant::now(),
            produce::grpc_timeout(request.metadata()),
            self.request_timeout,
        );
        let (caller, request) = split(request);
        let mut in_flight = Vec::new();
        let mut recent = Recent::new(&self.access, caller);
        for record in request.records {
            let started = match answer_by {
                // Handing a record over stops at the deadline: a record not handed over by
                // then was never given to Kafka (it is not written; a retry is safe).
                Some(deadline) => {
                    let topic = record.topic.clone();
                    tokio::time::timeout_at(deadline, self.producer.start(record, &mut recent))
                        .await
                        .unwrap_or_else(|_| Err(MessagingError::NotSent { topic }))
                }
                None => self.producer.start(record, &mut recent).await,
            };
            in_flight.push(started);
        }
        // Records Kafka has not acknowledged by the time the call must be answered are said to
        // be of unknown outcome, never left to a bare DEADLINE_EXCEEDED of the whole call.
        let results = futures::future::join_all(in_flight.into_iter().map(|started| async {
            match started {
                Ok(in_flight) => in_flight.delivered_by(answer_by).await,
                Err(error) => Err(error),
            }
        }))
        .await;
        Ok(Response::new(results_to_wire(results)))
    }

    type ProduceStreamStream = ResponseStream<pb::ProduceStreamResponse>;

    #[tracing::instrument(skip_all)]
    async fn produce_stream(
        &self,
        request: Request<Streaming<pb::ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        let (caller, request) = split(request);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(
            produce::run_stream(
                self.producer.clone(),
                caller,
                request,
                tx,
                self.produce_max_in_flight,
                self.stop.clone(),
            )
            .in_current_span(),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ConsumeStream = ResponseStream<pb::ConsumeResponse>;

    #[tracing::instrument(skip_all)]
    async fn consume(
        &self,
        request: Request<Streaming<pb::ConsumeRequest>>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        if self.stop.is_cancelled() {
            return Err(MessagingError::ShuttingDown.into());
        }
        let (caller, request) = split(request);
        let Ok(place) = Arc::clone(&self.consume_streams).try_acquire_owned() else {
            return Err(MessagingError::TooManyConsumeStreams {
                limit: self.max_consume_streams,
            }
            .into());
        };
        let (tx, rx) = mpsc::channel(64);
        let context = consume::ConsumeContext {
            place,
            kafka: self.kafka.clone(),
            schemas: Arc::clone(&self.schemas),
            access: self.access.clone(),
            caller,
            metrics: self.metrics.clone(),
        };
        tokio::spawn(consume::run(context, request, tx, self.stop.clone()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all)]
    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> Result<Response<pb::ListTopicsResponse>, Status> {
        let (caller, request) = split(request);
        let grants = self.access.grants(&caller);
        let topics = self
            .kafka
            .list_topics(request.include_internal)
            .await?
            .into_iter()
            .filter(|topic| grants.allows(Action::Describe, Resource::topic(&topic.name)))
            .collect();
        Ok(Response::new(pb::ListTopicsResponse { topics }))
    }

    #[tracing::instrument(skip_all, fields(topic = %request.get_ref().topic))]
    async fn describe_topic(
        &self,
        request: Request<pb::DescribeTopicRequest>,
    ) -> Result<Response<pb::DescribeTopicResponse>, Status> {
        let (caller, request) = split(request);
        let topic = required("topic", &request.topic)?;
        self.access
            .require(&caller, Action::Describe, Resource::topic(topic))?;
        Ok(Response::new(self.kafka.describe_topic(topic).await?))
    }

    #[tracing::instrument(skip_all, fields(topic = %request.get_ref().topic))]
    async fn create_topic(
        &self,
        request: Request<pb::CreateTopicRequest>,
    ) -> Result<Response<pb::CreateTopicResponse>, Status> {
        let (caller, request) = split(request);
        check_create_topic(&request)?;
        let topic = self
            .access
            .change(
                &caller,
                Action::Create,
                Resource::topic(&request.topic),
                self.kafka.create_topic(&request),
            )
            .await?;
        Ok(Response::new(pb::CreateTopicResponse {
            topic: Some(topic),
        }))
    }

    #[tracing::instrument(skip_all, fields(topic = %request.get_ref().topic))]
    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> Result<Response<pb::DeleteTopicResponse>, Status> {
        let (caller, request) = split(request);
        let topic = required("topic", &request.topic)?;
        self.access
            .change(
                &caller,
                Action::Delete,
                Resource::topic(topic),
                self.kafka.delete_topic(topic),
            )
            .await?;
        Ok(Response::new(pb::DeleteTopicResponse {}))
    }

    #[tracing::instrument(skip_all, fields(topic = %request.get_ref().topic))]
    async fn get_watermarks(
        &self,
        request: Request<pb::GetWatermarksRequest>,
    ) -> Result<Response<pb::GetWatermarksResponse>, Status> {
        let (caller, request) = split(request);
        let topic = required("topic", &request.topic)?;
        self.access
            .require(&caller, Action::Describe, Resource::topic(topic))?;
        let partitions = self.kafka.watermarks(topic).await?;
        Ok(Response::new(pb::GetWatermarksResponse { partitions }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_consumer_groups(
        &self,
        request: Request<pb::ListConsumerGroupsRequest>,
    ) -> Result<Response<pb::ListConsumerGroupsResponse>, Status> {
        let (caller, _) = split(request);
        let grants = self.access.grants(&caller);
        let groups = self
            .kafka
            .list_groups()
            .await?
            .into_iter()
            .filter(|group| grants.allows(Action::Read, Resource::group(&group.group_id)))
            .collect();
        Ok(Response::new(pb::ListConsumerGroupsResponse { groups }))
    }

    #[tracing::instrument(skip_all, fields(group_id = %request.get_ref().group_id))]
    async fn describe_consumer_group(
        &self,
        request: Request<pb::DescribeConsumerGroupRequest>,
    ) -> Result<Response<pb::DescribeConsumerGroupResponse>, Status> {
        let (caller, request) = split(request);
        let group = required("group_id", &request.group_id)?;
        self.access
            .require(&caller, Action::Read, Resource::group(group))?;
        Ok(Response::new(self.kafka.describe_group(group).await?))
    }
}
