"""Tenant isolation seen through confluent-kafka's Python clients, end to end over TLS.

A registry runs with a policy in which user `alice` (basic credentials) is in the group `team-a`,
which owns the `team-a-*` subjects, topics and consumer groups and nothing else; `admin` may do
everything, and has registered `team-b-*` subjects. As alice:

- `SchemaRegistryClient` registers and reads `team-a-*` subjects, and is refused every call on a
  `team-b-*` subject (existing or not) with HTTP 403 and Confluent's error code 40301, including
  a schema id that only team-b subjects use;
- lists (`GET /subjects`, `/schemas/ids/{id}/subjects`) hold only team-a subjects, even though
  team-b subjects exist: never a 403 for the whole list;
- `AvroSerializer` works for a team-a topic (its subject `<topic>-value`), records go through the
  stack's real Kafka and `AvroDeserializer` reads them back; for a team-b topic the serializer
  raises the 403, and alice cannot decode team-b's records either (their schema is refused);
- through the messaging service, alice lists and produces to team-a topics only
  (PERMISSION_DENIED, 40301, for team-b's);
- the registry's log has one audit line per denial (JSON, target "audit", principal "alice",
  outcome "denied", the action and resource) and never a password.
"""

import dataclasses
import json
import os
import secrets
import uuid

import grpc
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import (
    BOOTSTRAP,
    MessagingProcess,
    RegistryProcess,
    Secret,
    _write_private,
    basic_authorization,
    hash_password,
    https_request,
)

TEAM_POLICY = """\
# alice is team-a; team-a owns team-a-* subjects, topics and consumer groups, nothing else
groups:
  team-a: ["user:alice"]
roles:
  admin:
    rules:
      - allow: ["*"]
        on: ["*"]
  team-a-owner:
    rules:
      - allow: [read, write, delete, config]
        on: ["subject:team-a-*"]
      - allow: ["*"]
        on: ["topic:team-a-*", "group:team-a-*"]
  # the messaging service's own registry identity
  messaging-service:
    rules:
      - allow: [read, write]
        on: ["subject:*"]
      - allow: [read]
        on: ["registry"]
bindings:
  - role: admin
    to: ["user:admin"]
  - role: team-a-owner
    to: ["group:team-a"]
  - role: messaging-service
    to: ["user:messaging"]
"""

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "com.example.team",
    "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "long"}],
}
# team-b's own schema: an id that no team-a subject uses
PAYMENT = {
    "type": "record",
    "name": "Payment",
    "namespace": "com.example.teamb",
    "fields": [{"name": "card", "type": "string"}],
}
FORBIDDEN = (403, 40301)


@dataclasses.dataclass(frozen=True, repr=False)
class Team:
    security: object
    alice_password: Secret


@pytest.fixture(scope="module")
def team(security, tmp_path_factory) -> Team:
    """The session's security with `alice` added to its users and the team policy."""
    folder = tmp_path_factory.mktemp("team-security")
    os.chmod(folder, 0o700)
    alice_password = Secret(secrets.token_urlsafe(24))
    users = _write_private(
        folder / "users",
        (security.users.read_text() + hash_password("alice", alice_password) + "\n").encode(),
    )
    policy = folder / "policy.yaml"
    policy.write_text(TEAM_POLICY)
    return Team(security=dataclasses.replace(security, users=users, policy=policy), alice_password=alice_password)


@pytest.fixture
def team_registry(team, tmp_path):
    process = RegistryProcess(team.security, log=tmp_path / "registry.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def alice_config(team_registry, team) -> dict:
    """A SchemaRegistryClient configuration: the team registry over TLS, as alice."""
    return team_registry.client_config({"basic.auth.user.info": Secret(f"alice:{team.alice_password}")})


@pytest.fixture
def alice(alice_config) -> SchemaRegistryClient:
    return SchemaRegistryClient(alice_config)


@pytest.fixture
def admin(team_registry) -> SchemaRegistryClient:
    return SchemaRegistryClient(team_registry.client_config())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def refused(call) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as error:
        call()
    return error.value


def assert_forbidden(error: SchemaRegistryError, action: str, resource: str) -> None:
    assert (error.http_status_code, error.error_code) == FORBIDDEN, str(error)
    assert error.error_message == f"principal 'alice' may not {action} {resource}"


def audit_lines(registry: RegistryProcess) -> list[dict]:
    lines = []
    for line in registry.log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("target") == "audit":
                lines.append(record)
    return lines


@pytest.fixture
def team_topics(kafka_admin):
    """A team-a and a team-b topic on the stack's Kafka (made by its admin client), deleted after."""
    names = {"a": unique("team-a-orders"), "b": unique("team-b-payments")}
    futures = kafka_admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1) for name in names.values()], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=30)
    yield names
    kafka_admin.delete_topics(list(names.values()), operation_timeout=30)


def produce(topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 1})
    errors = []
    for value in values:
        producer.produce(topic, value=value, on_delivery=lambda error, _message: errors.append(error) if error else None)
    assert producer.flush(30) == 0
    assert errors == []


def consume(topic: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": unique("team-a-readers"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
            if len(values) == count:
                break
    finally:
        consumer.close()
    assert len(values) == count, f"consumed {len(values)} of {count} records from {topic}"
    return values


# ---------------------------------------------------------------------------------------------
# SchemaRegistryClient


def test_alice_registers_and_reads_team_a_subjects(alice, alice_config, admin):
    subject = unique("team-a-x") + "-value"
    schema = Schema(json.dumps(ORDER), "AVRO")
    schema_id = alice.register_schema(subject, schema)
    assert alice.register_schema(subject, schema) == schema_id  # registering again: the same id

    latest = alice.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 1, schema_id)
    assert alice.get_version(subject, 1).schema_id == schema_id
    assert alice.get_versions(subject) == [1]
    assert alice.lookup_schema(subject, schema).schema_id == schema_id
    # a fresh client, so the schema by id comes from the registry and not from a cache
    assert json.loads(SchemaRegistryClient(alice_config).get_schema(schema_id).schema_str) == ORDER
    # the subject's own compatibility level is hers to set
    assert alice.set_compatibility(subject_name=subject, level="FULL") == {"compatibility": "FULL"}
    assert alice.get_compatibility(subject_name=subject) == "FULL"
    assert admin.get_latest_version(subject).schema_id == schema_id


def test_alice_is_refused_team_b_subjects_with_403_40301(alice, admin):
    subject = unique("team-b-x") + "-value"
    payment = Schema(json.dumps(PAYMENT), "AVRO")
    team_b_id = admin.register_schema(subject, payment)
    missing = unique("team-b-missing") + "-value"

    order = Schema(json.dumps(ORDER), "AVRO")
    assert_forbidden(refused(lambda: alice.register_schema(subject, order)), "write", f"subject:{subject}")
    assert_forbidden(refused(lambda: alice.get_latest_version(subject)), "read", f"subject:{subject}")
    assert_forbidden(refused(lambda: alice.get_version(subject, 1)), "read", f"subject:{subject}")
    assert_forbidden(refused(lambda: alice.get_versions(subject)), "read", f"subject:{subject}")
    assert_forbidden(refused(lambda: alice.lookup_schema(subject, payment)), "read", f"subject:{subject}")
    assert_forbidden(refused(lambda: alice.delete_subject(subject)), "delete", f"subject:{subject}")
    assert_forbidden(refused(lambda: alice.set_compatibility(subject_name=subject, level="NONE")), "config", f"subject:{subject}")
    # a subject that does not exist is refused the same way: no telling which team-b subjects exist
    assert_forbidden(refused(lambda: alice.get_latest_version(missing)), "read", f"subject:{missing}")
    assert_forbidden(refused(lambda: alice.register_schema(missing, payment)), "write", f"subject:{missing}")
    # team-b's schema id: only team-b subjects use it
    assert_forbidden(refused(lambda: alice.get_schema(team_b_id)), "read", f"schema:{team_b_id} (through no subject it may read)")
    # the registry-wide level is admin's
    assert_forbidden(refused(lambda: alice.set_compatibility(level="NONE")), "config", "registry")

    # nothing changed
    assert admin.get_versions(subject) == [1]
    assert admin.get_compatibility() == "BACKWARD"
    assert missing not in admin.get_subjects()


def test_lists_hold_only_team_a_subjects(alice, admin, team_registry, team):
    shared = Schema(json.dumps(ORDER), "AVRO")
    team_a = sorted(unique("team-a-list") + suffix for suffix in ("-key", "-value"))
    team_b = sorted(unique("team-b-list") + suffix for suffix in ("-key", "-value"))
    for subject in team_b:
        admin.register_schema(subject, shared)
    ids = {alice.register_schema(subject, shared) for subject in team_a}
    (shared_id,) = ids  # the same schema: one id, used by team-a and team-b subjects

    assert sorted(admin.get_subjects()) == sorted(team_a + team_b)
    assert sorted(alice.get_subjects()) == team_a
    # the subjects of an id: team-a's only, not a 403
    authorization = basic_authorization("alice", team.alice_password)
    status, _, body = https_request(f"{team_registry.url}/schemas/ids/{shared_id}/subjects", team.security.ca, authorization)
    assert (status, sorted(body)) == (200, team_a)
    # the id itself is readable through her subjects
    status, _, body = https_request(f"{team_registry.url}/schemas/ids/{shared_id}", team.security.ca, authorization)
    assert status == 200 and json.loads(body["schema"]) == ORDER


# ---------------------------------------------------------------------------------------------
# AvroSerializer / AvroDeserializer through the stack's Kafka


def test_avro_serializer_works_for_team_a_topics_and_raises_403_for_team_b(alice, admin, team_topics):
    topic_a, topic_b = team_topics["a"], team_topics["b"]
    serializer = AvroSerializer(alice, json.dumps(ORDER))  # auto.register.schemas: on
    orders = [{"id": f"o-{n}", "amount": n * 100} for n in range(3)]
    produce(topic_a, [serializer(order, SerializationContext(topic_a, MessageField.VALUE)) for order in orders])
    assert alice.get_latest_version(f"{topic_a}-value").version == 1

    # alice reads her records back through the registry (the schema by id, as a fresh client)
    deserializer = AvroDeserializer(alice)
    values = consume(topic_a, len(orders))
    assert [deserializer(value, SerializationContext(topic_a, MessageField.VALUE)) for value in values] == orders

    # team-b's topic: registering its subject is refused, so nothing is serialized
    error = refused(lambda: serializer({"id": "x", "amount": 1}, SerializationContext(topic_b, MessageField.VALUE)))
    assert_forbidden(error, "write", f"subject:{topic_b}-value")
    # nor with the latest version instead of registering
    latest = AvroSerializer(alice, json.dumps(ORDER), conf={"auto.register.schemas": False, "use.latest.version": True})
    error = refused(lambda: latest({"id": "x", "amount": 1}, SerializationContext(topic_b, MessageField.VALUE)))
    assert_forbidden(error, "read", f"subject:{topic_b}-value")
    assert f"{topic_b}-value" not in admin.get_subjects()

    # team-b's own records (admin's serializer) are on Kafka, which alice can read, but their
    # schema is not hers: decoding them is refused
    team_b_serializer = AvroSerializer(admin, json.dumps(PAYMENT))
    produce(topic_b, [team_b_serializer({"card": "4111"}, SerializationContext(topic_b, MessageField.VALUE))])
    team_b_id = admin.get_latest_version(f"{topic_b}-value").schema_id
    (record,) = consume(topic_b, 1)
    error = refused(lambda: AvroDeserializer(alice)(record, SerializationContext(topic_b, MessageField.VALUE)))
    assert_forbidden(error, "read", f"schema:{team_b_id} (through no subject it may read)")


# ---------------------------------------------------------------------------------------------
# Topics through the messaging service


def test_alice_lists_and_produces_to_team_a_topics_only(team_registry, team, team_topics, messaging_pb, kafka_sasl_ssl):
    pb2 = messaging_pb.pb2
    topic_a, topic_b = team_topics["a"], team_topics["b"]
    messaging = MessagingProcess(team_registry, messaging_pb, kafka_sasl_ssl)
    channel = messaging.channel_with(authorization=basic_authorization("alice", team.alice_password))
    try:
        stub = messaging_pb.grpc.MessagingServiceStub(channel)
        names = [t.name for t in stub.ListTopics(pb2.ListTopicsRequest(), timeout=30).topics]
        assert topic_a in names and topic_b not in names
        assert all(name.startswith("team-a-") for name in names), names

        def record(topic: str):
            value = pb2.Payload(
                avro=pb2.AvroPayload(
                    json=json.dumps({"id": "o-1", "amount": 5}),
                    inline=pb2.InlineSchema(schema=json.dumps(ORDER), strategy=pb2.SUBJECT_NAME_STRATEGY_TOPIC_NAME),
                )
            )
            return pb2.ProducerRecord(topic=topic, value=value)

        results = stub.Produce(pb2.ProduceRequest(records=[record(topic_a), record(topic_b)]), timeout=60).results
        assert results[0].WhichOneof("result") == "metadata", results[0].error
        assert results[0].metadata.topic == topic_a
        assert results[1].WhichOneof("result") == "error"
        assert (results[1].error.code, results[1].error.reason) == (grpc.StatusCode.PERMISSION_DENIED.value[0], "FORBIDDEN")

        with pytest.raises(grpc.RpcError) as error:
            stub.DescribeTopic(pb2.DescribeTopicRequest(topic=topic_b), timeout=30)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        channel.close()
        messaging.stop()


def test_the_rest_api_applies_the_same_policy(team_registry, team, team_topics, messaging_pb, kafka_sasl_ssl):
    """The messaging service's REST Proxy API, as alice: lists and produces to team-a topics
    only (403 with 40301 for team-b's), creates consumer instances of team-a groups only, and
    another principal cannot use her instance (to admin it does not exist: 40403)."""
    import requests

    topic_a, topic_b = team_topics["a"], team_topics["b"]
    messaging = MessagingProcess(team_registry, messaging_pb, kafka_sasl_ssl)
    try:
        def session(authorization):
            http = requests.Session()
            http.trust_env = False
            http.verify = str(team.security.ca)
            http.headers["Authorization"] = authorization
            return http

        alice = session(basic_authorization("alice", team.alice_password))
        admin = session(team.security.admin_authorization())
        base = messaging.rest_url
        names = alice.get(f"{base}/topics").json()
        assert topic_a in names and topic_b not in names, names
        json_v2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}
        produced = alice.post(f"{base}/topics/{topic_a}", json={"records": [{"value": {"n": 1}}]}, headers=json_v2)
        assert produced.status_code == 200, produced.text
        refused = alice.post(f"{base}/topics/{topic_b}", json={"records": [{"value": {"n": 1}}]}, headers=json_v2)
        assert (refused.status_code, refused.json()["error_code"]) == FORBIDDEN, refused.text
        described = alice.get(f"{base}/topics/{topic_b}")
        assert (described.status_code, described.json()["error_code"]) == FORBIDDEN, described.text
        v2 = {"Content-Type": "application/vnd.kafka.v2+json"}
        other_group = alice.post(f"{base}/consumers/team-b-readers", json={"name": "x"}, headers=v2)
        assert (other_group.status_code, other_group.json()["error_code"]) == FORBIDDEN, other_group.text
        created = alice.post(f"{base}/consumers/team-a-readers", json={"name": "alices", "format": "json"}, headers=v2)
        assert created.status_code == 200, created.text
        instance = created.json()["base_uri"]
        subscribe_b = alice.post(f"{instance}/subscription", json={"topics": [topic_b]}, headers=v2)
        assert (subscribe_b.status_code, subscribe_b.json()["error_code"]) == FORBIDDEN, subscribe_b.text
        assert alice.post(f"{instance}/subscription", json={"topics": [topic_a]}, headers=v2).status_code == 204
        stolen = admin.get(f"{instance}/records", headers={"Accept": "application/vnd.kafka.json.v2+json"})
        assert (stolen.status_code, stolen.json()["error_code"]) == (404, 40403), stolen.text
        assert alice.delete(instance).status_code == 204
    finally:
        messaging.stop()


# ---------------------------------------------------------------------------------------------
# The audit log


def test_alice_denials_are_audited_without_her_password(alice, admin, team_registry, team):
    subject = unique("team-b-audit") + "-value"
    admin.register_schema(subject, Schema(json.dumps(PAYMENT), "AVRO"))
    mine = unique("team-a-audit") + "-value"
    alice.register_schema(mine, Schema(json.dumps(ORDER), "AVRO"))
    refused(lambda: alice.register_schema(subject, Schema(json.dumps(ORDER), "AVRO")))
    refused(lambda: alice.get_latest_version(subject))
    refused(lambda: alice.delete_subject(subject))
    refused(lambda: alice.set_compatibility(level="NONE"))

    lines = audit_lines(team_registry)
    denied = [line for line in lines if line.get("principal") == "alice" and line.get("outcome") == "denied"]
    assert [(line["action"], line["resource"]) for line in denied] == [
        ("write", f"subject:{subject}"),
        ("read", f"subject:{subject}"),
        ("delete", f"subject:{subject}"),
        ("config", "registry"),
    ]
    for line in denied:
        assert line["level"] == "INFO"
        assert line["service"] == "registry"
        assert line["auth_method"] == "basic"
        assert line["peer"].startswith("127.0.0.1:")
        assert line["timestamp"]
    # her allowed change is audited with its outcome, her reads are not
    allowed = [line for line in lines if line.get("principal") == "alice" and line["outcome"] != "denied"]
    assert [(line["action"], line["resource"], line["outcome"]) for line in allowed] == [("write", f"subject:{mine}", "succeeded")]
    # no password, in any form, anywhere in the log
    log = team_registry.log.read_text()
    for password in (team.alice_password, team.security.admin_password):
        assert password not in log
    for authorization in (basic_authorization("alice", team.alice_password), team.security.admin_authorization()):
        assert authorization.split(" ", 1)[1] not in log
