"""The walkthrough we replace (../shared/seed: Confluent Schema Registry plus the Kafka REST
Proxy), its REST Proxy section run as its own commands: every curl request with the same
method, path, headers and body, against our messaging service's REST API, and the answers
checked for the shapes the walkthrough shows.

Two things differ, and only those: the host (the walkthrough's http://localhost:8082 is the
test's messaging process, over TLS as every deployment is by default) and the credentials
(curl reads the CA and the admin's `Authorization` header from a config file, so no secret is
on a command line). The walkthrough's topics existed on its broker (auto-created, 30
partitions as its offsets show); ours never creates topics, so the test creates them first.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

WALKTHROUGH_HOST = "http://localhost:8082"

# The walkthrough's commands, verbatim but for line continuations joined.
PRODUCE_JSON = [
    "curl", "-X", "POST", "-H", "Content-Type: application/vnd.kafka.json.v2+json",
    "--data", '{"value_schema": "{\\"type\\": \\"record\\", \\"name\\":\\"User\\", \\"fields\\"{\\"name\\": \\"name\\", \\"type\\":\\"string\\"}]}",\n'
    '          "records":[{"value":{"name": "tester1"}},\n'
    '                    {"value":{"name": "tester2"}},\n'
    '                    {"value":{"name": "tester3"}},\n'
    '                    {"value":{"name": "tester4"}}]\n'
    "          }",
    "http://localhost:8082/topics/avrotestV1",
]
CREATE_CONSUMER = [
    "curl", "-X", "POST", "-H", "Content-Type: application/vnd.kafka.v2+json", "-H", "Accept: application/vnd.kafka.v2+json",
    "--data", '{"name": "my_consumer_instance", "format": "json", "auto.offset.reset": "earliest"}',
    "http://localhost:8082/consumers/my_json_consumer_group",
]
SUBSCRIBE = [
    "curl", "-X", "POST", "-H", "Content-Type: application/vnd.kafka.v2+json", "--data", '{"topics":["avrotestV1"]}',
    "http://localhost:8082/consumers/my_json_consumer_group/instances/my_consumer_instance/subscription",
]
FETCH = [
    "curl", "-X", "GET", "-H", "Accept: application/vnd.kafka.json.v2+json",
    "http://localhost:8082/consumers/my_json_consumer_group/instances/my_consumer_instance/records",
]
# The walkthrough's "bug 1": a read of an instance that is not there.
READ_MISSING_INSTANCE = ["curl", "http://localhost:8082/consumers/my_avro_consumer/instances/rest-consumer-2/topics/avrotest"]
LIST_TOPICS = ["curl", "http://localhost:8082/topics"]
DESCRIBE_TOPIC = ["curl", "http://localhost:8082/topics/avrotest1"]
# Its Avro produce, with REST Proxy v1's media type (the command is cut off in the document;
# the body is the REST Proxy documentation's Avro example).
PRODUCE_AVRO_V1 = [
    "curl", "-i", "-X", "POST", "-H", "Content-Type: application/vnd.kafka.avro.v1+json",
    "--data", '{"value_schema": "{\\"type\\": \\"record\\", \\"name\\": \\"User\\", \\"fields\\": [{\\"name\\": \\"name\\", \\"type\\": \\"string\\"}]}", "records": [{"value": {"name": "testUser"}}]}',
    "http://localhost:8082/topics/avrotest",
]

TOPICS = {"avrotestV1": 30, "avrotest": 1, "avrotest1": 1}


@pytest.fixture
def walkthrough_topics(kafka_admin):
    """The walkthrough's topics, fresh (a previous run's records and group offsets gone)."""
    existing = set(kafka_admin.list_topics(timeout=15).topics)
    stale = [name for name in TOPICS if name in existing]
    if stale:
        for future in kafka_admin.delete_topics(stale, operation_timeout=30).values():
            future.result(timeout=30)
        deadline = time.monotonic() + 30
        while set(stale) & set(kafka_admin.list_topics(timeout=15).topics) and time.monotonic() < deadline:
            time.sleep(0.2)
    deadline = time.monotonic() + 30
    while True:
        futures = kafka_admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=1) for name, n in TOPICS.items()], operation_timeout=30)
        try:
            for future in futures.values():
                future.result(timeout=30)
            break
        except Exception:  # noqa: BLE001 - a deletion still in progress: try again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    yield list(TOPICS)
    kafka_admin.delete_topics(list(TOPICS), operation_timeout=30)


class Curl:
    """Runs a walkthrough command: its host is the test's messaging REST API, and curl reads
    the CA and the admin's credentials from a config file."""

    def __init__(self, messaging, tmp_path: Path) -> None:
        self.base = messaging.rest_url
        config = tmp_path / "curl.config"
        config.touch(mode=0o600)
        config.write_text(
            f'cacert = "{messaging.security.ca}"\n'
            f'header = "Authorization: {messaging.security.admin_authorization()}"\n'
            "silent\nshow-error\n"
        )
        self.config = config

    def run(self, command: list) -> str:
        assert command[0] == "curl"
        args = [arg.replace(WALKTHROUGH_HOST, self.base) for arg in command[1:]]
        result = subprocess.run(["curl", "-K", str(self.config), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"curl failed ({result.returncode}): {result.stderr}"
        return result.stdout

    def json(self, command: list):
        output = self.run(command)
        try:
            return json.loads(output)
        except ValueError:
            pytest.fail(f"not JSON: {output!r}")


def test_the_walkthrough_rest_proxy_commands_run_unchanged(messaging, walkthrough_topics, tmp_path):
    curl = Curl(messaging, tmp_path)

    # Produce JSON: its value_schema is not even valid Avro; the json format ignores it.
    produced = curl.json(PRODUCE_JSON)
    assert produced["key_schema_id"] is None and produced["value_schema_id"] is None, produced
    assert len(produced["offsets"]) == 4, produced
    for offset in produced["offsets"]:
        assert set(offset) == {"partition", "offset", "error_code", "error"}, offset
        assert offset["error_code"] is None and offset["error"] is None, offset
        assert 0 <= offset["partition"] < 30 and offset["offset"] >= 0, offset

    created = curl.json(CREATE_CONSUMER)
    assert created["instance_id"] == "my_consumer_instance", created
    assert created["base_uri"] == f"{messaging.rest_url}/consumers/my_json_consumer_group/instances/my_consumer_instance", created

    assert curl.run(SUBSCRIBE) == "", "the subscription answers nothing (204)"

    records = curl.json(FETCH)
    # Keyless records went to partitions of their own; each comes back with its offset.
    assert sorted(r["value"]["name"] for r in records) == ["tester1", "tester2", "tester3", "tester4"], records
    for record in records:
        assert set(record) == {"topic", "key", "value", "partition", "offset"}, record
        assert record["topic"] == "avrotestV1" and record["key"] is None, record
    assert {(r["partition"], r["offset"]) for r in records} == {(o["partition"], o["offset"]) for o in produced["offsets"]}

    missing = curl.json(READ_MISSING_INSTANCE)
    assert missing["error_code"] == 40403, missing
    assert missing["message"].startswith("Consumer instance not found"), missing

    topics = curl.json(LIST_TOPICS)
    assert isinstance(topics, list) and set(TOPICS) <= set(topics), topics

    described = curl.json(DESCRIBE_TOPIC)
    assert described["name"] == "avrotest1", described
    assert described["configs"]["cleanup.policy"] == "delete", described["configs"]
    assert described["partitions"] == [{"partition": 0, "leader": described["partitions"][0]["leader"], "replicas": [{"broker": described["partitions"][0]["leader"], "leader": True, "in_sync": True}]}], described

    # The Avro produce with the v1 media type: the schema registered, its id answered.
    answer = curl.run(PRODUCE_AVRO_V1)
    head, _, body = answer.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/") and " 200" in head.splitlines()[0], answer
    assert "content-type: application/vnd.kafka.v1+json" in head.lower(), head
    produced = json.loads(body)
    assert isinstance(produced["value_schema_id"], int) and produced["value_schema_id"] > 0, produced
    assert produced["offsets"] == [{"partition": 0, "offset": 0, "error_code": None, "error": None}], produced
