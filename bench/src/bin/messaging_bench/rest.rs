//! The REST Proxy API's rows of `messaging-bench` (`--only rest`, or with everything): produce
//! of Avro records in batches over `POST /topics/{topic}` (the `avro` embedded format, the
//! records' JSON encoded by the service) next to the gRPC unary `Produce` with the same
//! batches and the same number of requests in flight; and reading a topic through a REST
//! consumer instance (`GET .../records`, Avro decoded to JSON) next to gRPC `Consume` in
//! batches. The REST rows' ratio is against the gRPC row before them (goal >= 0.5).
//!
//! The client is reqwest over HTTP/1.1 with keep-alive (one connection per request in flight),
//! as most REST Proxy clients are; its CPU time is reported apart from the service's.

use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tributary_bench::security::{AuthChannel, Mode, Pki};
use tributary_proto::messaging::v1 as mpb;
use tributary_proto::messaging::v1::messaging_service_client::MessagingServiceClient;

use super::{Args, ConsumeMode, CpuClock, Dataset, Row};

/// A REST client of the bench's messaging service.
#[derive(Debug, Clone)]
pub(crate) struct RestClient {
    http: reqwest::Client,
    base: String,
}

impl RestClient {
    pub(crate) fn new(addr: &str, mode: Mode, pki: &Pki) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().pool_max_idle_per_host(256);
        let scheme = if mode.is_tls() {
            let config =
                tributary_security::client::client_config(Some(&pki.ca), None, &[b"http/1.1"])?;
            builder = builder.use_preconfigured_tls(config);
            "https"
        } else {
            "http"
        };
        if let Some(authorization) = mode.authorization(pki) {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut value = reqwest::header::HeaderValue::from_str(&authorization)?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        Ok(Self {
            http: builder.build()?,
            base: format!("{scheme}://{addr}"),
        })
    }
}

/// The bodies of `data`'s records in batches of `batch`: a v2 Avro produce request naming the
/// schema by id.
fn produce_bodies(data: &Dataset, schema_id: i32, batch: usize) -> Vec<String> {
    data.json
        .chunks(batch.max(1))
        .map(|chunk| {
            let mut body = format!("{{\"value_schema_id\":{schema_id},\"records\":[");
            for (i, json) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str("{\"value\":");
                body.push_str(json);
                body.push('}');
            }
            body.push_str("]}");
            body
        })
        .collect()
}

/// Produces every record of `data` over `POST /topics/{topic}`, `concurrency` requests of
/// `batch` records in flight.
pub(crate) async fn rest_produce(
    client: &RestClient,
    topic: &str,
    data: &Dataset,
    schema_id: i32,
    batch: usize,
    concurrency: usize,
) -> anyhow::Result<Row> {
    let bodies = produce_bodies(data, schema_id, batch);
    let url = format!("{}/topics/{topic}", client.base);
    let clock = CpuClock::start();
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut errors = 0usize;
    let mut produced = 0usize;
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut bodies = bodies.into_iter();
    loop {
        while in_flight.len() < concurrency.max(1) {
            let Some(body) = bodies.next() else { break };
            let request = client
                .http
                .post(&url)
                .header("Content-Type", "application/vnd.kafka.avro.v2+json")
                .body(body);
            in_flight.push(async move {
                let sent = Instant::now();
                let answer = request.send().await?;
                let status = answer.status();
                let body: serde_json::Value = answer.json().await?;
                anyhow::ensure!(
                    status.is_success(),
                    "REST produce answered {status}: {body}"
                );
                Ok::<_, anyhow::Error>((body, sent.elapsed()))
            });
        }
        let Some(done) = in_flight.next().await else {
            break;
        };
        let (body, took) = done?;
        histogram.record(took.as_micros() as u64)?;
        for offset in body["offsets"].as_array().into_iter().flatten() {
            if offset["error_code"].is_null() {
                produced += 1;
            } else {
                errors += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        produced + errors == data.json.len(),
        "REST produce answered for {} of {} records",
        produced + errors,
        data.json.len()
    );
    Ok(Row {
        path: format!(
            "produce: REST POST /topics (avro, {batch} records per request, {concurrency} in flight)"
        ),
        size: data.label,
        records: produced,
        seconds,
        bytes: data.bytes,
        p50_ms: Some(super::latency_ms(&histogram, 0.5)),
        p99_ms: Some(super::latency_ms(&histogram, 0.99)),
        errors,
        versus: None,
        cpu: clock.per_record(produced, true),
    })
}

/// Produces every record of `data` through the gRPC unary `Produce`, `concurrency` calls of
/// `batch` records in flight (the REST rows' counterpart).
pub(crate) async fn grpc_produce_unary(
    channel: &AuthChannel,
    topic: &str,
    data: &Dataset,
    schema_id: i32,
    batch: usize,
    concurrency: usize,
) -> anyhow::Result<Row> {
    let client = MessagingServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let requests: Vec<mpb::ProduceRequest> = data
        .json
        .chunks(batch.max(1))
        .map(|chunk| mpb::ProduceRequest {
            records: chunk
                .iter()
                .map(|json| mpb::ProducerRecord {
                    topic: topic.to_owned(),
                    value: Some(mpb::Payload {
                        kind: Some(mpb::payload::Kind::Avro(mpb::AvroPayload {
                            json: json.clone(),
                            schema: Some(mpb::avro_payload::Schema::SchemaId(schema_id)),
                        })),
                    }),
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    let clock = CpuClock::start();
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let (mut produced, mut errors) = (0usize, 0usize);
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut requests = requests.into_iter();
    loop {
        while in_flight.len() < concurrency.max(1) {
            let Some(request) = requests.next() else {
                break;
            };
            let mut client = client.clone();
            in_flight.push(async move {
                let sent = Instant::now();
                let answer = client.produce(request).await?.into_inner();
                Ok::<_, anyhow::Error>((answer, sent.elapsed()))
            });
        }
        let Some(done) = in_flight.next().await else {
            break;
        };
        let (answer, took) = done?;
        histogram.record(took.as_micros() as u64)?;
        for result in answer.results {
            match result.result {
                Some(mpb::produce_result::Result::Metadata(_)) => produced += 1,
                _ => errors += 1,
            }
        }
    }
    Ok(Row {
        path: format!(
            "produce: gRPC Produce (Avro as JSON, {batch} records per call, {concurrency} in flight)"
        ),
        size: data.label,
        records: produced,
        seconds: started.elapsed().as_secs_f64(),
        bytes: data.bytes,
        p50_ms: Some(super::latency_ms(&histogram, 0.5)),
        p99_ms: Some(super::latency_ms(&histogram, 0.99)),
        errors,
        versus: None,
        cpu: clock.per_record(produced, true),
    })
}

/// Reads `expected` records of `topic` through a REST consumer instance of a new group
/// (`avro` format, from the earliest offset), fetching until all came; timed from creating
/// the instance to the last record. Fails when fewer come within a minute, or one cannot be
/// decoded.
pub(crate) async fn rest_fetch(
    client: &RestClient,
    topic: &str,
    group: &str,
    data: &Dataset,
) -> anyhow::Result<Row> {
    let expected = data.json.len();
    let clock = CpuClock::start();
    let started = Instant::now();
    let created: serde_json::Value = client
        .http
        .post(format!("{}/consumers/{group}", client.base))
        .header("Content-Type", "application/vnd.kafka.v2+json")
        .body(r#"{"name":"bench","format":"avro","auto.offset.reset":"earliest","auto.commit.enable":"false"}"#)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let instance = created["base_uri"]
        .as_str()
        .context("no base_uri in the create answer")?
        .to_owned();
    client
        .http
        .post(format!("{instance}/subscription"))
        .header("Content-Type", "application/vnd.kafka.v2+json")
        .body(format!(r#"{{"topics":["{topic}"]}}"#))
        .send()
        .await?
        .error_for_status()?;
    let mut records = 0usize;
    let mut failed = 0usize;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while records < expected && Instant::now() < deadline {
        let batch: Vec<serde_json::Value> = client
            .http
            .get(format!("{instance}/records?max_bytes=16777216"))
            .header("Accept", "application/vnd.kafka.avro.v2+json")
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        failed += batch
            .iter()
            .filter(|r| r.get("error_code").is_some())
            .count();
        records += batch.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = clock.per_record(records, true);
    client.http.delete(&instance).send().await?;
    anyhow::ensure!(
        records >= expected,
        "the REST consumer instance read {records} of {expected} records within a minute"
    );
    anyhow::ensure!(failed == 0, "{failed} records could not be decoded");
    Ok(Row {
        path: "consume: REST consumer instance GET records (avro to JSON, up to 16 MiB per fetch)"
            .to_owned(),
        size: data.label,
        records,
        seconds,
        bytes: data.bytes,
        p50_ms: None,
        p99_ms: None,
        errors: failed,
        versus: None,
        cpu,
    })
}

/// The REST rows of one data set: each round produces the records through gRPC `Produce` and
/// through REST into topics of their own, then reads the REST-produced topic through gRPC
/// `Consume` (batched, Avro as JSON) and through a REST consumer instance. Each row is the
/// round with the median rate; a REST row's ratio is against the gRPC row before it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn rest_rows(
    args: &Args,
    channel: &AuthChannel,
    client: &RestClient,
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    topics: &mut Vec<String>,
    data: &Dataset,
    schema_id: i32,
    prefix: &str,
) -> anyhow::Result<Vec<Row>> {
    let mut measured: [Vec<Row>; 4] = Default::default();
    let once = Args {
        consume_multiple: 1,
        ..args.clone()
    };
    for round in 0..args.rounds.max(1) {
        let names = [
            format!("{prefix}-{round}-grpc"),
            format!("{prefix}-{round}-rest"),
        ];
        super::create_topics(admin, &names, args.partitions).await?;
        topics.extend(names.iter().cloned());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        eprintln!("  {}: REST round {}", data.label, round + 1);
        measured[0].push(
            grpc_produce_unary(
                channel,
                &names[0],
                data,
                schema_id,
                args.rest_batch,
                args.rest_in_flight,
            )
            .await?,
        );
        measured[1].push(
            rest_produce(
                client,
                &names[1],
                data,
                schema_id,
                args.rest_batch,
                args.rest_in_flight,
            )
            .await?,
        );
        let mut grpc = super::grpc_consume(
            &once,
            channel,
            &names[1],
            data,
            &format!("{prefix}-{round}-grpc-consume"),
            mpb::PayloadFormat::AvroTagged,
            ConsumeMode::Batched,
        )
        .await?;
        grpc.path = "consume: gRPC Consume (Avro as JSON, batched)".to_owned();
        measured[2].push(grpc);
        measured[3].push(
            rest_fetch(
                client,
                &names[1],
                &format!("{prefix}-{round}-rest-consume"),
                data,
            )
            .await?,
        );
    }
    let mut rows = Vec::new();
    let mut medians = measured.into_iter().map(super::median);
    while let (Some(grpc), Some(mut rest)) = (medians.next(), medians.next()) {
        rest.versus = Some(grpc.rate());
        rows.push(grpc);
        rows.push(rest);
    }
    Ok(rows)
}
