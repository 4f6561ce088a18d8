"""The Confluent Schema Registry + REST Proxy walkthrough, against tributary over gRPC, in Python.

Registers the `User` record schema, produces tester1..tester4 as Avro from JSON (plus one raw
record that is not Confluent-framed, between the good ones), consumes them back through a
consumer group with acknowledgements (the bad record arrives with a per-record error and its
raw bytes, and the stream goes on), lists and describes the topic, checks a schema change for
compatibility, reads a missing schema id to show the error details, and reads the health of both
services. Then Protobuf: registers a `walkthrough.v1.Click` .proto as a PROTOBUF schema, reads it
back as a serialized FileDescriptorProto to build the message class, produces two clicks from
JSON and one already in Protobuf's binary encoding (plus one that does not match and fails
alone), and consumes them back as canonical JSON, equal to what was sent. Then JSON Schema:
registers a draft-07 `Signup` schema as a JSON schema, produces two signups by schema id and one
that does not validate (it fails alone with SCHEMA_MISMATCH, naming the keyword and the path),
and consumes the two back as the JSON text that was sent. First it shows the services' refusal: a
call without credentials is UNAUTHENTICATED, with Confluent's 40101 in its ErrorInfo. Exits
non-zero when anything is not as expected.

The services serve TLS and authenticate every call (but health) by default. The example
connects over TLS, verifying the services' certificate against --ca (default: the system's
roots), and authenticates either with basic credentials sent as call credentials on every call
(`authorization: Basic base64(user:password)`), or with a client certificate (mTLS).

Generate the client first (scripts/gen-clients), then, with the local stack's CA and admin
credentials (`scripts/stack env` exports them):

    eval "$(scripts/stack env)"
    python examples/python/walkthrough.py                 # TLS + basic credentials
    python examples/python/walkthrough.py --auth mtls     # TLS + the client certificate

Every option has an environment variable:

    --ca PATH             TRIBUTARY_CA_FILE           PEM CA bundle (default: the system's roots)
    --auth METHOD         TRIBUTARY_AUTH              basic | mtls | none (default: basic when a
                                                      username and password are given, else mtls
                                                      when a certificate and key are, else none)
    --username NAME       TRIBUTARY_USERNAME          basic: the user
    --password-file PATH                              basic: the password, from a file; else
                          TRIBUTARY_PASSWORD          the password, else
                          TRIBUTARY_PASSWORD_FILE     the password, from a file
    --cert PATH           TRIBUTARY_CLIENT_CERT_FILE  mtls: PEM client certificate chain
    --key PATH            TRIBUTARY_CLIENT_KEY_FILE   mtls: PEM private key
    --plaintext           TRIBUTARY_TLS=0             no TLS and no credentials: only for
                                                      services started with --tls off --auth none
                          REGISTRY_ADDR, MESSAGING_ADDR  (default 127.0.0.1:50051, :50052)
"""

import argparse
import base64
import json
import os
import queue
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from tributary.messaging.v1 import messaging_pb2 as msg  # noqa: E402
from tributary.messaging.v1 import messaging_pb2_grpc as msg_grpc  # noqa: E402
from tributary.registry.v1 import registry_pb2 as reg  # noqa: E402
from tributary.registry.v1 import registry_pb2_grpc as reg_grpc  # noqa: E402

USER_SCHEMA = json.dumps(
    {"type": "record", "name": "User", "fields": [{"name": "name", "type": "string"}]},
    separators=(",", ":"),
)
# Adds a field without a default: new readers cannot read old records (BACKWARD fails).
USER_WITH_AGE = json.dumps(
    {
        "type": "record",
        "name": "User",
        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
    }
)
# The same field with a default: compatible.
USER_WITH_OPTIONAL_AGE = json.dumps(
    {
        "type": "record",
        "name": "User",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": ["null", "int"], "default": None},
        ],
    }
)
NAMES = ["tester1", "tester2", "tester3", "tester4"]
# The Protobuf part: a .proto registered as a PROTOBUF schema, its message named in every record.
CLICK_PROTO = """syntax = "proto3";
package walkthrough.v1;

message Click {
  string user = 1;
  int64 at_ms = 2;
  map<string, string> tags = 3;
}
"""
CLICK = "walkthrough.v1.Click"
# Produced as JSON: proto field names, or lowerCamelCase with a 64-bit integer as a string.
CLICKS_JSON = [
    {"user": "tester1", "at_ms": 1767225600000, "tags": {"page": "/home"}},
    {"user": "tester2", "atMs": "1767225601500", "tags": {"page": "/cart", "variant": "b"}},
]
# Produced in Protobuf's binary encoding (the message class built from the registry's descriptor).
CLICK_BINARY = {"user": "tester3", "at_ms": 1767225603000}
# Not a Click: fails alone (SCHEMA_MISMATCH, naming the field), the other records are written.
CLICK_MISMATCH = {"user": "tester4", "clicks": 3}
# The JSON Schema part: a draft-07 schema registered as a JSON schema, validated for every record.
SIGNUP_SCHEMA = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Signup",
        "type": "object",
        "properties": {"email": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["email", "age"],
        "additionalProperties": False,
    },
    separators=(",", ":"),
)
SIGNUPS = [{"email": "tester1@example.com", "age": 31}, {"email": "tester2@example.com", "age": 0}]
# Below the minimum: fails alone (SCHEMA_MISMATCH naming `minimum` and `/age`), the others are written.
SIGNUP_INVALID = {"email": "tester3@example.com", "age": -1}
BAD_BYTES = b"plain bytes, not Confluent-framed Avro"
TIMEOUT_S = 30


class WalkthroughFailed(Exception):
    """Something was not as the walkthrough expects."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise WalkthroughFailed(what)


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def read_secret(path: str) -> str:
    """A password from a file: its content without one trailing line break, as the services read
    their own secret files."""
    text = read_file(path).decode()
    for line_break in ("\r\n", "\n"):
        if text.endswith(line_break):
            text = text[: -len(line_break)]
            break
    if not text:
        raise WalkthroughFailed(f"the password file {path} is empty")
    return text


class BasicAuth(grpc.AuthMetadataPlugin):
    """Call credentials: `authorization: Basic base64(user:password)` on every call."""

    def __init__(self, username: str, password: str) -> None:
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        callback((("authorization", self._header),), None)


class Connection:
    """How to reach the services: TLS (with which roots) and which credentials."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.tls, self.ca = args.tls, args.ca
        self.root_certificates = read_file(args.ca) if args.ca and self.tls else None
        # --password-file, else TRIBUTARY_PASSWORD, else TRIBUTARY_PASSWORD_FILE
        password = None if args.password_file else os.environ.get("TRIBUTARY_PASSWORD") or None
        password_file = args.password_file or os.environ.get("TRIBUTARY_PASSWORD_FILE")
        has_password = bool(password or password_file)
        auth = args.auth
        if not auth:
            if not self.tls:
                auth = "none"
            elif args.username and has_password:
                auth = "basic"
            elif args.cert and args.key:
                auth = "mtls"
            else:
                auth = "none"
        if auth != "none" and not self.tls:
            raise WalkthroughFailed(f"--auth {auth} needs TLS: credentials are never sent in plaintext")
        self.auth = auth
        if auth == "basic":
            if not args.username or not has_password:
                raise WalkthroughFailed(
                    "basic authentication needs TRIBUTARY_USERNAME and TRIBUTARY_PASSWORD or TRIBUTARY_PASSWORD_FILE"
                )
            self.username = args.username
            self._password = password or read_secret(password_file)
        elif auth == "mtls":
            if not args.cert or not args.key:
                raise WalkthroughFailed("mtls needs TRIBUTARY_CLIENT_CERT_FILE and TRIBUTARY_CLIENT_KEY_FILE")
            self._cert, self._key = read_file(args.cert), read_file(args.key)
            self.cert_file = args.cert
        elif auth != "none":
            raise WalkthroughFailed(f"unknown authentication method {auth!r} (basic, mtls or none)")

    def describe(self) -> str:
        if not self.tls:
            return "plaintext, no credentials"
        tls = f"TLS (CA {self.ca})" if self.ca else "TLS (the system's roots)"
        if self.auth == "basic":
            return f"{tls}, basic credentials of {self.username}"
        if self.auth == "mtls":
            return f"{tls}, client certificate {self.cert_file}"
        return f"{tls}, no credentials"

    def channel(self, address: str) -> grpc.Channel:
        """A channel that authenticates every call it makes."""
        if not self.tls:
            return grpc.insecure_channel(address)
        if self.auth == "mtls":
            # The client certificate authenticates the connection, so every call on it.
            return grpc.secure_channel(
                address,
                grpc.ssl_channel_credentials(
                    root_certificates=self.root_certificates, private_key=self._key, certificate_chain=self._cert
                ),
            )
        tls = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
        if self.auth == "basic":
            basic = grpc.metadata_call_credentials(BasicAuth(self.username, self._password), name="basic")
            return grpc.secure_channel(address, grpc.composite_channel_credentials(tls, basic))
        return grpc.secure_channel(address, tls)

    def anonymous_channel(self, address: str) -> grpc.Channel:
        """TLS, but neither call credentials nor a client certificate."""
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=self.root_certificates))


def error_code_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str, str]:
    """The gRPC code, ErrorInfo.reason and Confluent error code (ErrorInfo.metadata["error_code"])
    of a failed call, read from the google.rpc.Status in its grpc-status-details-bin trailer."""
    status = rpc_status.from_call(error)
    reason, error_code = "", ""
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, error_code = info.reason, info.metadata.get("error_code", "")
    return error.code(), reason, error_code


def check_health(name: str, chan: grpc.Channel) -> None:
    status = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
    state = health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)
    print(f"health     {name}: {state}")
    expect(status.status == health_pb2.HealthCheckResponse.SERVING, f"{name} is {state}, not SERVING")


def show_refusal(conn: Connection, registry_addr: str, messaging_addr: str) -> None:
    """Without credentials, health still answers (grpc.health.v1 is open by default), and any
    other call is UNAUTHENTICATED with Confluent's 40101 in its ErrorInfo."""
    with conn.anonymous_channel(registry_addr) as registry_chan, conn.anonymous_channel(
        messaging_addr
    ) as messaging_chan:
        check_health("registry without credentials", registry_chan)
        registry = reg_grpc.RegistryServiceStub(registry_chan)
        messaging = msg_grpc.MessagingServiceStub(messaging_chan)
        calls = (
            ("registry ListSubjects", lambda: registry.ListSubjects(reg.ListSubjectsRequest(), timeout=TIMEOUT_S)),
            ("messaging ListTopics", lambda: messaging.ListTopics(msg.ListTopicsRequest(), timeout=TIMEOUT_S)),
        )
        for what, call in calls:
            try:
                call()
                raise WalkthroughFailed(f"{what} without credentials succeeded")
            except grpc.RpcError as error:
                code, reason, error_code = error_code_of(error)
                print(
                    f"refused    {what} without credentials: {code.name} {reason} error_code={error_code} "
                    f"({error.details()})"
                )
                expect(
                    code == grpc.StatusCode.UNAUTHENTICATED and error_code == "40101",
                    f"{what} without credentials is not UNAUTHENTICATED/40101",
                )


def consume(messaging, topic: str, group: str, expected: int) -> tuple[list, int]:
    """Reads `expected` records of `topic` through consumer group `group`, acknowledging each,
    and returns them with the group's committed offsets once the acknowledgements are committed
    (the stream stays open meanwhile: closing it before would drop acks still in flight)."""
    requests: queue.Queue = queue.Queue()
    requests.put(
        msg.ConsumeRequest(
            subscription=msg.Subscription(
                group_id=group,
                topics=[topic],
                start=msg.START_POSITION_EARLIEST,
                value_format=msg.PAYLOAD_FORMAT_AVRO_PLAIN,
            )
        )
    )

    records = []
    # The requests: the subscription, then the acks as they are queued, until None.
    responses = messaging.Consume(iter(requests.get, None), timeout=TIMEOUT_S)
    try:
        for response in responses:
            if response.HasField("rebalance"):
                rebalance = response.rebalance
                for change, partitions in (("assigned", rebalance.assigned), ("revoked", rebalance.revoked)):
                    if partitions:
                        names = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions)
                        print(f"consume    group {group} {change} {names}")
                continue
            record = response.record
            records.append(record)
            requests.put(
                msg.ConsumeRequest(ack=msg.Ack(topic=record.topic, partition=record.partition, offset=record.offset))
            )
            if len(records) == expected:
                return records, wait_for_commits(messaging, group, topic, expected)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise WalkthroughFailed(f"consumed {len(records)} of {expected} records in {TIMEOUT_S}s") from error
        raise
    finally:
        requests.put(None)
        responses.cancel()
    raise WalkthroughFailed(f"the consume stream ended after {len(records)} of {expected} records")


def wait_for_commits(messaging, group: str, topic: str, expected: int) -> int:
    """The group's committed offsets summed over the partitions of `topic`, once they reach
    `expected` (commits of acknowledged records are asynchronous)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        described = messaging.DescribeConsumerGroup(msg.DescribeConsumerGroupRequest(group_id=group), timeout=TIMEOUT_S)
        committed = sum(o.offset for o in described.offsets if o.topic == topic)
        if committed >= expected or time.monotonic() > deadline:
            return committed
        time.sleep(0.2)


def walkthrough(registry_chan: grpc.Channel, messaging_chan: grpc.Channel) -> None:
    registry = reg_grpc.RegistryServiceStub(registry_chan)
    messaging = msg_grpc.MessagingServiceStub(messaging_chan)
    run = uuid.uuid4().hex[:12]
    topic, group = f"walkthrough-py-{run}", f"walkthrough-py-{run}"
    subject = f"{topic}-value"

    check_health("registry", registry_chan)
    check_health("messaging", messaging_chan)

    registered = registry.RegisterSchema(reg.RegisterSchemaRequest(subject=subject, schema=USER_SCHEMA), timeout=TIMEOUT_S)
    print(f"register   {subject}: id {registered.id}, version {registered.version}")
    expect(registered.version == 1, f"first version of a new subject is {registered.version}, not 1")
    fetched = registry.GetSchema(reg.GetSchemaRequest(id=registered.id), timeout=TIMEOUT_S)
    expect(json.loads(fetched.schema) == json.loads(USER_SCHEMA), f"schema {registered.id} reads back as {fetched.schema}")

    # A schema id nobody registered: NOT_FOUND, with Confluent's 40403 in the ErrorInfo detail.
    try:
        registry.GetSchema(reg.GetSchemaRequest(id=2_000_000_000), timeout=TIMEOUT_S)
        raise WalkthroughFailed("GetSchema of an unknown id succeeded")
    except grpc.RpcError as error:
        code, reason, error_code = error_code_of(error)
        print(f"error      GetSchema(2000000000): {code.name} {reason} error_code={error_code} ({error.details()})")
        expect(code == grpc.StatusCode.NOT_FOUND and error_code == "40403", "unknown schema id is not NOT_FOUND/40403")

    created = messaging.CreateTopic(
        msg.CreateTopicRequest(topic=topic, partitions=2, replication_factor=1), timeout=TIMEOUT_S
    )
    print(f"topic      created {created.topic.topic} with {len(created.topic.partitions)} partitions")

    # All to partition 0 so the consumer sees them in this order: the bad record between good ones.
    def avro(name: str) -> msg.Payload:
        return msg.Payload(avro=msg.AvroPayload(json=json.dumps({"name": name}), schema_id=registered.id))

    values = [avro(NAMES[0]), avro(NAMES[1]), msg.Payload(raw=BAD_BYTES), avro(NAMES[2]), avro(NAMES[3])]
    produced = messaging.Produce(
        msg.ProduceRequest(records=[msg.ProducerRecord(topic=topic, partition=0, value=value) for value in values]),
        timeout=TIMEOUT_S,
    )
    for value, result in zip(values, produced.results):
        expect(result.HasField("metadata"), f"produce failed: {result.error}")
        what = json.loads(value.avro.json)["name"] if value.HasField("avro") else "raw bytes"
        print(f"produce    {what} -> partition {result.metadata.partition} offset {result.metadata.offset}")
        if value.HasField("avro"):
            expect(result.metadata.value_schema_id == registered.id, "record framed with another schema id")

    topics = messaging.ListTopics(msg.ListTopicsRequest(), timeout=TIMEOUT_S)
    listed = {t.name: t.partition_count for t in topics.topics}
    print(f"topics     {len(listed)} topics; {topic} has {listed.get(topic)} partitions")
    expect(listed.get(topic) == 2, f"{topic} is not listed with 2 partitions")
    described = messaging.DescribeTopic(msg.DescribeTopicRequest(topic=topic), timeout=TIMEOUT_S)
    for p in described.partitions:
        print(
            f"describe   partition {p.partition}: leader {p.leader}, replicas {list(p.replicas)}, "
            f"in-sync {list(p.in_sync_replicas)}"
        )
    configs = {c.name: c.value for c in described.configs}
    print(f"describe   cleanup.policy={configs.get('cleanup.policy')} retention.ms={configs.get('retention.ms')}")
    expect(len(described.partitions) == 2 and "cleanup.policy" in configs, "DescribeTopic is missing partitions or configs")

    records, committed = consume(messaging, topic, group, expected=len(values))
    consumed_names = []
    for record in records:
        value = record.value
        if value.HasField("error"):
            print(
                f"consume    offset {record.offset}: {value.error.reason} ({value.error.message}); "
                f"raw bytes {value.raw!r}; the stream goes on"
            )
            expect(value.raw == BAD_BYTES, "the bad record's raw bytes differ from what was produced")
            consumed_names.append(None)
        else:
            print(f"consume    offset {record.offset}: {value.json} (schema id {value.schema_id})")
            consumed_names.append(json.loads(value.json)["name"])
    expected_names = NAMES[:2] + [None] + NAMES[2:]
    expect(consumed_names == expected_names, f"consumed {consumed_names}, expected {expected_names}")
    print(f"consume    group {group} committed {committed} records (all acknowledged)")
    expect(committed == len(values), f"group committed {committed} records, expected {len(values)}")

    refused = registry.CheckCompatibility(
        reg.CheckCompatibilityRequest(subject=subject, schema=USER_WITH_AGE), timeout=TIMEOUT_S
    )
    level = reg.CompatibilityLevel.Name(refused.level)
    print(f"compatible adding 'age' without default: {refused.is_compatible} at {level}")
    for reason in refused.incompatibilities:
        print(f"           - {reason.description}")
    expect(not refused.is_compatible and refused.incompatibilities, "a field without default passed as compatible")
    accepted = registry.CheckCompatibility(
        reg.CheckCompatibilityRequest(subject=subject, schema=USER_WITH_OPTIONAL_AGE), timeout=TIMEOUT_S
    )
    print(f"compatible adding 'age' with default null: {accepted.is_compatible}")
    expect(accepted.is_compatible, f"an optional field was refused: {list(accepted.incompatibilities)}")

    messaging.DeleteTopic(msg.DeleteTopicRequest(topic=topic), timeout=TIMEOUT_S)
    print(f"topic      deleted {topic}")

    protobuf_walkthrough(registry, messaging, f"{topic}-clicks")
    json_schema_walkthrough(registry, messaging, f"{topic}-signups")


def protobuf_walkthrough(registry, messaging, topic: str) -> None:
    """Protobuf records on their own topic: register the .proto, build the message class from the
    serialized descriptor the registry serves, produce JSON and binary records naming the message,
    and consume them back as canonical JSON."""
    subject, group = f"{topic}-value", topic

    registered = registry.RegisterSchema(
        reg.RegisterSchemaRequest(subject=subject, schema=CLICK_PROTO, schema_type="PROTOBUF"), timeout=TIMEOUT_S
    )
    print(f"register   {subject} (PROTOBUF): id {registered.id}, version {registered.version}")
    expect(registered.version == 1, f"first version of a new subject is {registered.version}, not 1")

    # format "serialized": the schema as a base64 FileDescriptorProto, ready for a descriptor pool
    serialized = registry.GetSchema(reg.GetSchemaRequest(id=registered.id, format="serialized"), timeout=TIMEOUT_S)
    expect(serialized.schema_type == "PROTOBUF", f"schema {registered.id} is {serialized.schema_type}, not PROTOBUF")
    file_proto = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(serialized.schema))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    Click = message_factory.GetMessageClass(pool.FindMessageTypeByName(CLICK))
    print(
        f"schema     {registered.id} serialized: FileDescriptorProto package {file_proto.package}, "
        f"messages {[m.name for m in file_proto.message_type]}"
    )

    created = messaging.CreateTopic(
        msg.CreateTopicRequest(topic=topic, partitions=1, replication_factor=1), timeout=TIMEOUT_S
    )
    print(f"topic      created {created.topic.topic} with {len(created.topic.partitions)} partition")

    def protobuf(**data) -> msg.Payload:
        return msg.Payload(protobuf=msg.ProtobufPayload(schema_id=registered.id, message_name=CLICK, **data))

    # What each record should read back as: the message, parsed here from what is sent.
    sent = [json_format.ParseDict(click, Click()) for click in CLICKS_JSON + [CLICK_BINARY]]
    values = [protobuf(json=json.dumps(click)) for click in CLICKS_JSON] + [protobuf(binary=sent[-1].SerializeToString())]
    mismatch = protobuf(json=json.dumps(CLICK_MISMATCH))
    produced = messaging.Produce(
        msg.ProduceRequest(records=[msg.ProducerRecord(topic=topic, value=value) for value in values + [mismatch]]),
        timeout=TIMEOUT_S,
    )
    expect(len(produced.results) == len(values) + 1, f"{len(produced.results)} results for {len(values) + 1} records")
    *written, refused = produced.results
    for value, result in zip(values, written):
        expect(result.HasField("metadata"), f"produce failed: {result.error}")
        payload = value.protobuf
        what = f"json {payload.json}" if payload.HasField("json") else f"binary {payload.binary.hex()}"
        print(f"produce    {CLICK} {what} -> partition {result.metadata.partition} offset {result.metadata.offset}")
        expect(result.metadata.value_schema_id == registered.id, "record framed with another schema id")
    print(f"produce    {CLICK} json {mismatch.protobuf.json} -> {refused.error.reason} ({refused.error.message})")
    expect(refused.error.reason == "SCHEMA_MISMATCH", f"a record with an unknown field was not refused: {refused}")

    records, committed = consume(messaging, topic, group, expected=len(sent))
    for record, expected in zip(records, sent):
        value = record.value
        expect(not value.HasField("error"), f"offset {record.offset} not decoded: {value.error.message}")
        print(f"consume    offset {record.offset}: {value.json} (schema id {value.schema_id})")
        expect(value.schema_id == registered.id, f"offset {record.offset} has schema id {value.schema_id}")
        # canonical JSON: lowerCamelCase names, 64-bit integers as strings, defaults left out
        canonical = json_format.MessageToDict(expected)
        expect(json.loads(value.json) == canonical, f"offset {record.offset} reads {value.json}, expected {canonical}")
        expect(json_format.Parse(value.json, Click()) == expected, f"offset {record.offset} parses to another Click")
    print(f"consume    group {group} committed {committed} records (all acknowledged)")
    expect(committed == len(sent), f"group committed {committed} records, expected {len(sent)}")

    messaging.DeleteTopic(msg.DeleteTopicRequest(topic=topic), timeout=TIMEOUT_S)
    print(f"topic      deleted {topic}")


def json_schema_walkthrough(registry, messaging, topic: str) -> None:
    """JSON Schema records on their own topic: register the schema, produce JSON records by its id
    (one that does not validate fails alone), and consume the others back as the JSON sent."""
    subject, group = f"{topic}-value", topic

    registered = registry.RegisterSchema(
        reg.RegisterSchemaRequest(subject=subject, schema=SIGNUP_SCHEMA, schema_type="JSON"), timeout=TIMEOUT_S
    )
    print(f"register   {subject} (JSON): id {registered.id}, version {registered.version}")
    expect(registered.version == 1, f"first version of a new subject is {registered.version}, not 1")
    fetched = registry.GetSchema(reg.GetSchemaRequest(id=registered.id), timeout=TIMEOUT_S)
    expect(fetched.schema_type == "JSON", f"schema {registered.id} is {fetched.schema_type}, not JSON")
    expect(json.loads(fetched.schema) == json.loads(SIGNUP_SCHEMA), f"schema {registered.id} reads back as {fetched.schema}")

    created = messaging.CreateTopic(
        msg.CreateTopicRequest(topic=topic, partitions=1, replication_factor=1), timeout=TIMEOUT_S
    )
    print(f"topic      created {created.topic.topic} with {len(created.topic.partitions)} partition")

    def signup(record: dict) -> msg.Payload:
        return msg.Payload(json_schema=msg.JsonSchemaPayload(json=json.dumps(record), schema_id=registered.id))

    # In one request: the two signups, then the one below the minimum.
    values = [signup(record) for record in SIGNUPS + [SIGNUP_INVALID]]
    produced = messaging.Produce(
        msg.ProduceRequest(records=[msg.ProducerRecord(topic=topic, value=value) for value in values]),
        timeout=TIMEOUT_S,
    )
    expect(len(produced.results) == len(values), f"{len(produced.results)} results for {len(values)} records")
    *written, refused = produced.results
    for value, result in zip(values, written):
        expect(result.HasField("metadata"), f"produce failed: {result.error}")
        print(f"produce    Signup {value.json_schema.json} -> partition {result.metadata.partition} offset {result.metadata.offset}")
        expect(result.metadata.value_schema_id == registered.id, "record framed with another schema id")
    print(f"produce    Signup {values[-1].json_schema.json} -> {refused.error.reason} ({refused.error.message})")
    expect(
        refused.error.reason == "SCHEMA_MISMATCH"
        and "minimum" in refused.error.message
        and "/age" in refused.error.message,
        f"a signup below the minimum was not refused as SCHEMA_MISMATCH naming minimum and /age: {refused}",
    )

    records, committed = consume(messaging, topic, group, expected=len(SIGNUPS))
    for record, expected in zip(records, SIGNUPS):
        value = record.value
        expect(not value.HasField("error"), f"offset {record.offset} not decoded: {value.error.message}")
        print(f"consume    offset {record.offset}: {value.json} (schema id {value.schema_id})")
        expect(value.schema_id == registered.id, f"offset {record.offset} has schema id {value.schema_id}")
        expect(json.loads(value.json) == expected, f"offset {record.offset} reads {value.json}, expected {expected}")
    print(f"consume    group {group} committed {committed} records (all acknowledged)")
    expect(committed == len(SIGNUPS), f"group committed {committed} records, expected {len(SIGNUPS)}")

    messaging.DeleteTopic(msg.DeleteTopicRequest(topic=topic), timeout=TIMEOUT_S)
    print(f"topic      deleted {topic}")


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plaintext", dest="tls", action="store_false", default=env("TRIBUTARY_TLS", "1") != "0")
    parser.add_argument("--ca", default=env("TRIBUTARY_CA_FILE"))
    parser.add_argument("--auth", choices=("basic", "mtls", "none"), default=env("TRIBUTARY_AUTH") or None)
    parser.add_argument("--username", default=env("TRIBUTARY_USERNAME"))
    parser.add_argument("--password-file")
    parser.add_argument("--cert", default=env("TRIBUTARY_CLIENT_CERT_FILE"))
    parser.add_argument("--key", default=env("TRIBUTARY_CLIENT_KEY_FILE"))
    args = parser.parse_args()
    registry_addr = env("REGISTRY_ADDR", "127.0.0.1:50051")
    messaging_addr = env("MESSAGING_ADDR", "127.0.0.1:50052")
    try:
        conn = Connection(args)
        print(f"connect    registry {registry_addr}, messaging {messaging_addr}: {conn.describe()}")
        if conn.auth != "none":
            show_refusal(conn, registry_addr, messaging_addr)
        with conn.channel(registry_addr) as registry, conn.channel(messaging_addr) as messaging:
            walkthrough(registry, messaging)
    except (WalkthroughFailed, OSError) as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        code, reason, error_code = error_code_of(error)
        info = "".join(f" {part}" for part in (reason, error_code and f"error_code={error_code}") if part)
        print(f"FAILED: {code.name}{info}: {error.details()}", file=sys.stderr)
        return 1
    print("python walkthrough: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
