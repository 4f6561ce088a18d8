"""The messaging service's Kafka REST Proxy API against a client written for the REST Proxy:
`RestProxyClient` below uses nothing but `requests` and the REST Proxy's v2 API, as a team's
script would (produce Avro, consume in a group, commit, seek). Its records are read by
confluent-kafka's `DeserializingConsumer` with the Avro deserializer (against our registry),
and records written by confluent-kafka's `SerializingProducer` are read through it. Then the
error cases, each with the REST Proxy's status and error code, and the v3 produce and listing
routes.
"""

import json
import struct
import time
import uuid

import pytest
import requests
from confluent_kafka import DeserializingConsumer, SerializingProducer
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import StringDeserializer, StringSerializer

from conftest import BOOTSTRAP, MessagingProcess

V2 = "application/vnd.kafka.v2+json"
AVRO_V2 = "application/vnd.kafka.avro.v2+json"

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "com.example.shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "item", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
ORDERS = [{"id": n, "item": f"item-{n}", "note": None if n % 2 else f"note {n}"} for n in range(20)]


class RestProxyClient:
    """A REST Proxy v2 client with `requests` only."""

    def __init__(self, base_url: str, ca: str, authorization: str) -> None:
        self.base = base_url
        self.http = requests.Session()
        # Without this, REQUESTS_CA_BUNDLE (set on many machines) would win over `verify`.
        self.http.trust_env = False
        self.http.verify = ca
        self.http.headers["Authorization"] = authorization

    def produce_avro(self, topic: str, schema: dict, values: list, keys: list = None) -> dict:
        records = [{"value": value} if keys is None else {"key": key, "value": value} for key, value in zip(keys or [None] * len(values), values)]
        body = {"value_schema": json.dumps(schema), "records": records}
        if keys is not None:
            body["key_schema"] = json.dumps({"type": "string"})
        answer = self.http.post(f"{self.base}/topics/{topic}", json=body, headers={"Content-Type": AVRO_V2, "Accept": V2})
        answer.raise_for_status()
        return answer.json()

    def create_consumer(self, group: str, name: str, fmt: str = "avro", auto_commit: bool = False) -> str:
        answer = self.http.post(
            f"{self.base}/consumers/{group}",
            json={"name": name, "format": fmt, "auto.offset.reset": "earliest", "auto.commit.enable": "true" if auto_commit else "false"},
            headers={"Content-Type": V2},
        )
        answer.raise_for_status()
        return answer.json()["base_uri"]

    def subscribe(self, instance: str, topics: list) -> None:
        self.http.post(f"{instance}/subscription", json={"topics": topics}, headers={"Content-Type": V2}).raise_for_status()

    def records(self, instance: str, fmt: str = "avro", timeout_ms: int = 1000) -> list:
        answer = self.http.get(f"{instance}/records", params={"timeout": timeout_ms}, headers={"Accept": f"application/vnd.kafka.{fmt}.v2+json"})
        answer.raise_for_status()
        return answer.json()

    def records_until(self, instance: str, count: int, fmt: str = "avro", within: float = 30) -> list:
        found, deadline = [], time.monotonic() + within
        while len(found) < count and time.monotonic() < deadline:
            found.extend(self.records(instance, fmt))
        return found

    def commit(self, instance: str, offsets: list = None) -> None:
        body = None if offsets is None else {"offsets": offsets}
        self.http.post(f"{instance}/offsets", json=body, headers={"Content-Type": V2}).raise_for_status()

    def committed(self, instance: str, partitions: list) -> list:
        answer = self.http.get(f"{instance}/offsets", json={"partitions": partitions}, headers={"Content-Type": V2})
        answer.raise_for_status()
        return answer.json()["offsets"]

    def seek_to_beginning(self, instance: str, partitions: list) -> None:
        self.http.post(f"{instance}/positions/beginning", json={"partitions": partitions}, headers={"Content-Type": V2}).raise_for_status()

    def seek(self, instance: str, offsets: list) -> None:
        self.http.post(f"{instance}/positions", json={"offsets": offsets}, headers={"Content-Type": V2}).raise_for_status()

    def delete(self, instance: str) -> None:
        self.http.delete(instance).raise_for_status()


@pytest.fixture
def rest(messaging) -> RestProxyClient:
    return RestProxyClient(messaging.rest_url, str(messaging.security.ca), messaging.security.admin_authorization())


@pytest.fixture
def topic3(kafka_admin):
    name = f"rest-{uuid.uuid4().hex[:12]}"
    kafka_admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)], operation_timeout=30)[name].result(timeout=30)
    yield name
    kafka_admin.delete_topics([name], operation_timeout=30)


def test_records_produced_over_rest_are_read_by_confluents_deserializer(rest, registry, topic3):
    keys = [f"customer-{n % 4}" for n in range(len(ORDERS))]
    produced = rest.produce_avro(topic3, ORDER, ORDERS, keys)
    assert all(o["error_code"] is None for o in produced["offsets"]), produced
    assert produced["value_schema_id"] > 0 and produced["key_schema_id"] > 0, produced
    consumer = DeserializingConsumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"py-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "key.deserializer": AvroDeserializer(SchemaRegistryClient(registry.client_config())),
        "value.deserializer": AvroDeserializer(SchemaRegistryClient(registry.client_config())),
    })
    consumer.subscribe([topic3])
    read, deadline = [], time.monotonic() + 30
    try:
        while len(read) < len(ORDERS) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None:
                assert message.error() is None, message.error()
                read.append((message.key(), message.value(), message.partition(), message.offset()))
    finally:
        consumer.close()
    assert sorted(read, key=lambda r: r[1]["id"]) == sorted(
        [(k, v, o["partition"], o["offset"]) for k, v, o in zip(keys, ORDERS, produced["offsets"])], key=lambda r: r[1]["id"]
    )
    # Keyed records land where the Java client's partitioner puts them: one partition per key.
    by_key = {}
    for key, _, partition, _ in read:
        by_key.setdefault(key, set()).add(partition)
    assert all(len(partitions) == 1 for partitions in by_key.values()), by_key


def test_records_written_by_confluents_serializer_are_consumed_committed_and_sought(rest, registry, topic3):
    producer = SerializingProducer({
        "bootstrap.servers": BOOTSTRAP,
        "key.serializer": StringSerializer(),
        "value.serializer": AvroSerializer(SchemaRegistryClient(registry.client_config()), json.dumps(ORDER)),
    })
    for order in ORDERS:
        producer.produce(topic3, key=str(order["id"]), value=order)
    assert producer.flush(30) == 0
    group = f"rest-group-{uuid.uuid4().hex[:8]}"
    instance = rest.create_consumer(group, "reader")
    rest.subscribe(instance, [topic3])
    records = rest.records_until(instance, len(ORDERS))
    assert len(records) == len(ORDERS), records
    # Avro's JSON encoding, as the REST Proxy gives it: a union's branch is named.
    by_id = {r["value"]["id"]: r for r in records}
    for order in ORDERS:
        value = by_id[order["id"]]["value"]
        assert value["item"] == order["item"]
        assert value["note"] == (None if order["note"] is None else {"string": order["note"]}), value
        assert "value cannot" not in by_id[order["id"]]["error"], by_id[order["id"]]
    # Keys are strings without Confluent framing: they cannot be decoded as Avro, and say so
    # record by record, their bytes kept.
    sample = records[0]
    assert sample["key"] is None and sample["error_code"] == 50002, sample
    assert "key cannot be decoded" in sample["error"], sample
    assert sample["raw_key"], sample

    # Nothing is committed until the client commits (auto-commit is off).
    partitions = [{"topic": topic3, "partition": p} for p in range(3)]
    assert {o["offset"] for o in rest.committed(instance, partitions)} == {-1}
    last = {}
    for record in records:
        last[record["partition"]] = max(last.get(record["partition"], -1), record["offset"])
    rest.commit(instance)
    committed = {o["partition"]: o["offset"] for o in rest.committed(instance, partitions)}
    assert committed == {p: last[p] + 1 if p in last else -1 for p in range(3)}, committed

    # Seek: back to the beginning of every partition, all records again; then to one offset.
    rest.seek_to_beginning(instance, partitions)
    again = rest.records_until(instance, len(ORDERS))
    assert sorted(r["value"]["id"] for r in again) == sorted(o["id"] for o in ORDERS)
    busiest = max(last, key=lambda p: last[p])
    rest.seek(instance, [{"topic": topic3, "partition": busiest, "offset": last[busiest]}])
    tail = rest.records_until(instance, 1)
    assert [(r["partition"], r["offset"]) for r in tail] == [(busiest, last[busiest])], tail

    # An explicit commit names the last record read: the group resumes after it.
    rest.commit(instance, [{"topic": topic3, "partition": busiest, "offset": 0}])
    committed = {o["partition"]: o["offset"] for o in rest.committed(instance, partitions)}
    assert committed[busiest] == 1, committed
    rest.delete(instance)
    gone = rest.http.get(f"{instance}/records", headers={"Accept": AVRO_V2})
    assert gone.status_code == 404 and gone.json()["error_code"] == 40403, gone.text
    assert "deleted" in gone.json()["message"], gone.text


def test_a_bad_record_does_not_poison_a_fetch(rest, topic3):
    good = rest.produce_avro(topic3, ORDER, [ORDERS[0]])
    schema_id = good["value_schema_id"]
    # Framed for a schema id that does not exist, and framed for the right one but cut short.
    unknown = b"\x00" + struct.pack(">I", 999_999) + b"\x02\x04ab"
    truncated = b"\x00" + struct.pack(">I", schema_id) + b"\x02"
    import base64

    answer = rest.http.post(
        f"{rest.base}/topics/{topic3}/partitions/0",
        json={"records": [{"value": base64.b64encode(unknown).decode()}, {"value": base64.b64encode(truncated).decode()}]},
        headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
    )
    assert answer.status_code == 200, answer.text
    rest.produce_avro(topic3, ORDER, [ORDERS[1]])
    instance = rest.create_consumer(f"poison-{uuid.uuid4().hex[:8]}", "reader")
    rest.subscribe(instance, [topic3])
    records = rest.records_until(instance, 4)
    assert len(records) == 4, records
    decoded = [r["value"]["id"] for r in records if r["value"] is not None]
    assert sorted(decoded) == [0, 1], records
    failed = [r for r in records if r["value"] is None]
    assert len(failed) == 2, records
    for record in failed:
        assert record["error_code"] == 50002 and "value cannot be decoded" in record["error"], record
        assert base64.b64decode(record["raw_value"]) in (unknown, truncated), record


def error(answer):
    try:
        body = answer.json()
    except ValueError:
        pytest.fail(f"not JSON ({answer.status_code}): {answer.text!r}")
    return answer.status_code, body.get("error_code"), body.get("message", "")


def test_errors_have_the_rest_proxys_statuses_and_codes(rest, topic3, kafka_admin):
    post = rest.http.post
    # Unknown topic.
    status, code, message = error(post(f"{rest.base}/topics/no-such-topic-{uuid.uuid4().hex[:6]}", json={"records": [{"value": 1}]}, headers={"Content-Type": "application/vnd.kafka.json.v2+json"}))
    assert (status, code) == (404, 40401) and "no-such-topic" in message
    # Unknown partition.
    status, code, _ = error(post(f"{rest.base}/topics/{topic3}/partitions/7", json={"records": [{"value": 1}]}, headers={"Content-Type": "application/vnd.kafka.json.v2+json"}))
    assert (status, code) == (404, 40402)
    # Wrong content type.
    status, code, _ = error(post(f"{rest.base}/topics/{topic3}", data="records", headers={"Content-Type": "text/plain"}))
    assert (status, code) == (415, 415)
    # A schema with a typo: 422 naming it, never a 500.
    bad_schema = {"type": "record", "name": "User", "fields": [{"name": "name", "type": "strin"}]}
    status, code, message = error(post(f"{rest.base}/topics/{topic3}", json={"value_schema": json.dumps(bad_schema), "records": [{"value": {"name": "x"}}]}, headers={"Content-Type": AVRO_V2}))
    assert status == 422 and code in (42205, 422), (status, code, message)
    assert "strin" in message, message
    # The walkthrough's broken schema (a missing ':'), with the avro format.
    status, code, message = error(post(f"{rest.base}/topics/{topic3}", json={"value_schema": '{"type": "record", "name":"User", "fields"{"name": "name"}]}', "records": [{"value": {"name": "x"}}]}, headers={"Content-Type": AVRO_V2}))
    assert status == 422, (status, code, message)
    # A bad record among good ones: 422 naming it, and nothing written.
    status, code, message = error(post(f"{rest.base}/topics/{topic3}/partitions/0", json={"value_schema": json.dumps(ORDER), "records": [{"value": ORDERS[0]}, {"value": {"id": "seven", "item": "x", "note": None}}]}, headers={"Content-Type": AVRO_V2}))
    assert (status, code) == (422, 42203), (status, code, message)
    assert message.startswith("records[1]") and "$.id" in message, message
    from confluent_kafka import Consumer, TopicPartition

    watermarks = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "watermarks"})
    try:
        assert watermarks.get_watermark_offsets(TopicPartition(topic3, 0), timeout=10) == (0, 0)
    finally:
        watermarks.close()
    # A value schema missing for the avro format.
    status, code, _ = error(post(f"{rest.base}/topics/{topic3}", json={"records": [{"value": {"name": "x"}}]}, headers={"Content-Type": AVRO_V2}))
    assert (status, code) == (422, 42202)
    # Not JSON.
    status, code, _ = error(post(f"{rest.base}/topics/{topic3}", data="{records:", headers={"Content-Type": "application/vnd.kafka.json.v2+json"}))
    assert (status, code) == (400, 400)
    # Over the body limit (16 MiB).
    big = b'{"records":[{"value":"' + b"a" * (17 * 1024 * 1024) + b'"}]}'
    status, code, _ = error(post(f"{rest.base}/topics/{topic3}", data=big, headers={"Content-Type": "application/vnd.kafka.binary.v2+json"}))
    assert (status, code) == (413, 41301)
    # Unknown instance: says this replica has none.
    status, code, message = error(rest.http.get(f"{rest.base}/consumers/g/instances/nobody/records", headers={"Accept": AVRO_V2}))
    assert (status, code) == (404, 40403) and "has no such instance" in message, message
    # Records asked for in another format than the instance's.
    instance = rest.create_consumer(f"fmt-{uuid.uuid4().hex[:8]}", "json-reader", fmt="json")
    status, code, _ = error(rest.http.get(f"{instance}/records", headers={"Accept": AVRO_V2}))
    assert (status, code) == (406, 40601)
    # The same name twice in a group.
    group = instance.split("/consumers/")[1].split("/")[0]
    status, code, _ = error(post(f"{rest.base}/consumers/{group}", json={"name": "json-reader", "format": "json"}, headers={"Content-Type": V2}))
    assert (status, code) == (409, 40902)
    # A bad consumer setting.
    status, code, message = error(post(f"{rest.base}/consumers/{group}", json={"name": "other", "format": "xml"}, headers={"Content-Type": V2}))
    assert (status, code) == (422, 42204) and "format" in message
    # Without credentials.
    anonymous = requests.get(f"{rest.base}/topics", verify=rest.http.verify)
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == 40101


def test_an_idle_instance_expires_and_says_so(registry, kafka_admin, messaging_pb, kafka_sasl_ssl, topic3):
    process = MessagingProcess(registry, messaging_pb, kafka_sasl_ssl, extra_env={"MESSAGING_CONSUMER_INSTANCE_TIMEOUT_MS": "1000"})
    try:
        rest = RestProxyClient(process.rest_url, str(process.security.ca), process.security.admin_authorization())
        instance = rest.create_consumer(f"expiry-{uuid.uuid4().hex[:8]}", "sleepy")
        rest.subscribe(instance, [topic3])
        time.sleep(2.5)
        status, code, message = error(rest.http.get(f"{instance}/records", headers={"Accept": AVRO_V2}))
        assert (status, code) == (404, 40403), (status, code, message)
        assert "expired after 1000 ms" in message, message
    finally:
        process.stop()


def test_v3_produce_one_record_or_a_stream_and_list(rest, topic3):
    clusters = rest.http.get(f"{rest.base}/v3/clusters").json()
    assert clusters["kind"] == "KafkaClusterList" and len(clusters["data"]) == 1, clusters
    cluster = clusters["data"][0]["cluster_id"]
    assert cluster, clusters
    records_url = f"{rest.base}/v3/clusters/{cluster}/topics/{topic3}/records"
    one = rest.http.post(records_url, json={"partition_id": 1, "key": {"type": "STRING", "data": "k1"}, "value": {"type": "JSON", "data": {"n": 1}}})
    assert one.status_code == 200, one.text
    result = one.json()
    assert (result["error_code"], result["partition_id"], result["offset"], result["topic_name"]) == (200, 1, 0, topic3), result
    assert result["key"] == {"type": "STRING", "size": 2} and result["value"]["type"] == "JSON", result

    schema = json.dumps(ORDER)
    lines = [
        {"value": {"type": "AVRO", "schema": schema, "data": ORDERS[0]}},
        {"value": {"type": "AVRO", "schema": schema, "data": {"id": "not a long"}}},
        {"partition_id": 2, "value": {"type": "BINARY", "data": "aGVsbG8="}},
    ]

    def body():
        for line in lines:
            yield (json.dumps(line) + "\n").encode()

    streamed = rest.http.post(records_url, data=body(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 200, streamed.text
    results = [json.loads(line) for line in streamed.text.splitlines() if line.strip()]
    assert len(results) == 3, results
    assert results[0]["error_code"] == 200 and results[0]["value"]["schema_id"] > 0, results
    assert results[1]["error_code"] == 422 and "$.id" in results[1]["message"], results
    assert (results[2]["error_code"], results[2]["partition_id"], results[2]["value"]["size"]) == (200, 2, 5), results

    bad = rest.http.post(records_url, json={"value": {"type": "AVRO", "schema": schema, "data": {"id": 1}}})
    assert bad.status_code == 422 and bad.json()["error_code"] == 422, bad.text
    other = rest.http.post(f"{rest.base}/v3/clusters/not-this-one/topics/{topic3}/records", json={"value": {"type": "JSON", "data": 1}})
    assert other.status_code == 404, other.text

    topics = rest.http.get(f"{rest.base}/v3/clusters/{cluster}/topics").json()
    mine = [t for t in topics["data"] if t["topic_name"] == topic3]
    assert mine and mine[0]["partitions_count"] == 3 and mine[0]["replication_factor"] == 1, topics
    described = rest.http.get(f"{rest.base}/v3/clusters/{cluster}/topics/{topic3}").json()
    assert described["kind"] == "KafkaTopic" and described["topic_name"] == topic3, described
    groups = rest.http.get(f"{rest.base}/v3/clusters/{cluster}/consumer-groups").json()
    assert groups["kind"] == "KafkaConsumerGroupList", groups
