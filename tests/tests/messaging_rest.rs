//! The messaging service's REST Proxy API under hostile input: every documented route (from
//! the OpenAPI document the service serves) gets broken bodies under each content type: none,
//! truncated JSON, the wrong shapes, 100,000 levels of nesting, numbers out of every range,
//! invalid UTF-8, megabytes of one character, and its path parameters as long, odd or
//! negative values. Every answer must be a REST Proxy error body (`error_code`, `message`)
//! or a success, never a 5xx but 503 (the answer when a dependency is down), and the service
//! must answer normally afterwards. Plus: a record produced over REST reads back over gRPC.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tributary_tests::{TestMessaging, security, unique_name};

/// The bodies sent to every route that takes one.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    vec![
        ("empty", Vec::new()),
        ("truncated", b"{\"records\":[{\"value\":".to_vec()),
        ("array", b"[]".to_vec()),
        ("wrong types", br#"{"records":5,"topics":"t","offsets":{},"partitions":"x","name":7,"format":[]}"#.to_vec()),
        ("deep", format!("{{\"records\":[{{\"value\":{deep}}}]}}").into_bytes()),
        ("huge numbers", br#"{"records":[{"value":1e400,"partition":99999999999}],"value_schema_id":-1,"offsets":[{"topic":"t","partition":-5,"offset":-9}]}"#.to_vec()),
        ("not utf-8", vec![0xff, 0xfe, b'{', 0x80, 0x00]),
        ("one char, 2 MiB", vec![b'['; 2 << 20]),
        ("nul", b"{\"records\":[{\"value\":\"\\u0000\"}],\"topics\":[\"\\u0000\"],\"topic_pattern\":\"(\"}".to_vec()),
        ("bad schema", br#"{"value_schema":"{\"type\":","key_schema":"[[[[","records":[{"key":1,"value":{"a":1}}]}"#.to_vec()),
    ]
}

const CONTENT_TYPES: [&str; 6] = [
    "application/vnd.kafka.json.v2+json",
    "application/vnd.kafka.avro.v2+json",
    "application/vnd.kafka.binary.v2+json",
    "application/vnd.kafka.protobuf.v2+json",
    "application/json",
    "text/plain",
];

/// Checks an answer: a success, or an error body with a numeric code and a message; never a
/// 5xx but 503.
async fn check(what: &str, response: reqwest::Response) {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    assert!(
        status < 500 || status == 503,
        "{what}: answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    if status >= 400 {
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{what}: {status} is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert!(error["error_code"].is_u64(), "{what}: {error}");
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{what}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_survives_hostile_input_with_rest_proxy_errors() {
    let messaging = TestMessaging::start().await;
    let topic = unique_name("rest-hostile");
    messaging.create_topic(&topic, 2).await;
    let http = security::admin_http_client();
    let base = format!("https://{}", messaging.rest_addr);
    let document: serde_json::Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A live consumer instance, so instance routes reach their handlers.
    let created: serde_json::Value = http
        .post(format!("{base}/consumers/hostile-group"))
        .header("Content-Type", "application/vnd.kafka.v2+json")
        .body(r#"{"name":"victim","format":"avro"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["instance_id"], "victim", "{created}");
    let clusters: serde_json::Value = http
        .get(format!("{base}/v3/clusters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cluster = clusters["data"][0]["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "x".repeat(10_000);
    let mut requests = 0usize;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            for (group, instance, topic, partition, cluster) in [
                (
                    "hostile-group",
                    "victim",
                    topic.as_str(),
                    "0",
                    cluster.as_str(),
                ),
                ("g", "nobody", "no-such-topic", "-1", "other"),
                (
                    long.as_str(),
                    long.as_str(),
                    long.as_str(),
                    "99999999999999",
                    long.as_str(),
                ),
                ("..", "%2e%2e", "a%2Fb", "0x10", "%00"),
            ] {
                let url = format!(
                    "{base}{}",
                    path.replace("{group}", group)
                        .replace("{instance}", instance)
                        .replace("{topic}", topic)
                        .replace("{partition}", partition)
                        .replace("{cluster}", cluster)
                );
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
                    if path.ends_with("/instances/{instance}") && instance == "victim" {
                        continue; // deleting the victim comes last
                    }
                    let response = http
                        .request(method.clone(), format!("{url}?timeout=abc&max_bytes=-1"))
                        .header("Accept", "application/vnd.kafka.avro.v2+json")
                        .timeout(Duration::from_secs(60))
                        .send()
                        .await
                        .unwrap();
                    check(&format!("{method} {url}"), response).await;
                    requests += 1;
                    continue;
                }
                for content_type in CONTENT_TYPES {
                    for (name, body) in hostile_bodies() {
                        let response = http
                            .request(method.clone(), &url)
                            .header("Content-Type", content_type)
                            .body(body)
                            .timeout(Duration::from_secs(60))
                            .send()
                            .await
                            .unwrap();
                        check(
                            &format!("{method} {path} ({content_type}, {name})"),
                            response,
                        )
                        .await;
                        requests += 1;
                    }
                }
            }
        }
    }
    assert!(requests > 1000, "only {requests} requests sent");
    // Still serving: a produce and the instance's deletion work.
    let produced = http
        .post(format!("{base}/topics/{topic}"))
        .header("Content-Type", "application/vnd.kafka.json.v2+json")
        .body(r#"{"records":[{"value":{"still":"here"}}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(produced.status(), 200);
    let deleted = http
        .delete(format!("{base}/consumers/hostile-group/instances/victim"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    messaging.stop().await.unwrap();
}
