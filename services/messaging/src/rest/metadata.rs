//! The REST Proxy v2 metadata routes: topics, their partitions, brokers. Lists hold what the
//! caller may describe; a topic the caller may not describe is refused (403), one that does
//! not exist is 40401.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use tributary_proto::messaging::v1 as pb;
use tributary_security::authz::{Action, Resource};

use crate::error::MessagingError;
use crate::rest::error::RestError;
use crate::rest::media::{V2_JSON, check_accept};
use crate::rest::produce::parse_partition;
use crate::rest::{CallerOf, RestState, v2_json};

/// A replica of a partition, as the REST Proxy describes it.
#[derive(Debug, Serialize)]
pub struct Replica {
    pub broker: i32,
    pub leader: bool,
    pub in_sync: bool,
}

/// A partition, as the REST Proxy describes it.
#[derive(Debug, Serialize)]
pub struct Partition {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<Replica>,
}

impl From<pb::PartitionInfo> for Partition {
    fn from(info: pb::PartitionInfo) -> Self {
        let replicas = info
            .replicas
            .iter()
            .map(|&broker| Replica {
                broker,
                leader: broker == info.leader,
                in_sync: info.in_sync_replicas.contains(&broker),
            })
            .collect();
        Partition {
            partition: info.partition,
            leader: info.leader,
            replicas,
        }
    }
}

/// A topic, as the REST Proxy describes it.
#[derive(Debug, Serialize)]
pub struct Topic {
    pub name: String,
    pub configs: serde_json::Map<String, serde_json::Value>,
    pub partitions: Vec<Partition>,
}

/// `GET /topics`: the names of the topics the caller may describe (internal ones left out).
pub async fn list_topics(
    State(state): State<RestState>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    check_accept(&headers, V2_JSON)?;
    let grants = state.access.grants(&caller);
    let names: Vec<String> = state
        .kafka
        .list_topics(false)
        .await?
        .into_iter()
        .filter(|topic| grants.allows(Action::Describe, Resource::topic(&topic.name)))
        .map(|topic| topic.name)
        .collect();
    Ok(v2_json(&names))
}

/// `GET /topics/{topic}`: partitions and configuration (sensitive values as null).
pub async fn describe_topic(
    State(state): State<RestState>,
    Path(topic): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    check_accept(&headers, V2_JSON)?;
    state
        .access
        .require(&caller, Action::Describe, Resource::topic(&topic))?;
    let described = state.kafka.describe_topic(&topic).await?;
    let configs = described
        .configs
        .into_iter()
        .map(|entry| {
            let value = entry.value.map_or(serde_json::Value::Null, Into::into);
            (entry.name, value)
        })
        .collect();
    Ok(v2_json(&Topic {
        name: described.topic,
        configs,
        partitions: described.partitions.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /topics/{topic}/partitions`.
pub async fn list_partitions(
    State(state): State<RestState>,
    Path(topic): Path<String>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    check_accept(&headers, V2_JSON)?;
    state
        .access
        .require(&caller, Action::Describe, Resource::topic(&topic))?;
    let partitions: Vec<Partition> = state
        .kafka
        .describe_partitions(&topic)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(v2_json(&partitions))
}

/// `GET /topics/{topic}/partitions/{partition}`.
pub async fn describe_partition(
    State(state): State<RestState>,
    Path((topic, partition)): Path<(String, String)>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    check_accept(&headers, V2_JSON)?;
    let partition = parse_partition(&partition)?;
    state
        .access
        .require(&caller, Action::Describe, Resource::topic(&topic))?;
    let found = state
        .kafka
        .describe_partitions(&topic)
        .await?
        .into_iter()
        .find(|info| info.partition == partition)
        .ok_or(MessagingError::PartitionNotFound {
            topic: topic.clone(),
            partition,
        })?;
    Ok(v2_json(&Partition::from(found)))
}

/// `GET /brokers`: `{"brokers": [ids]}` (cluster describe permission).
pub async fn list_brokers(
    State(state): State<RestState>,
    CallerOf(caller): CallerOf,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    check_accept(&headers, V2_JSON)?;
    state
        .access
        .require(&caller, Action::Describe, Resource::cluster())?;
    let cluster = state.kafka.cluster().await?;
    let ids: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    Ok(v2_json(&serde_json::json!({ "brokers": ids })))
}
