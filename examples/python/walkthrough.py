"""The Confluent Schema Registry + REST Proxy walkthrough, against tributary over gRPC, in Python.

Registers the `User` record schema, produces tester1..tester4 as Avro from JSON (plus one raw
record that is not Confluent-framed, between the good ones), consumes them back through a
consumer group with acknowledgements (the bad record arrives with a per-record error and its
raw bytes, and the stream goes on), lists and describes the topic, checks a schema change for
compatibility, reads a missing schema id to show the error details, and reads the health of both
services. Exits non-zero when anything is not as expected.

Generate the client first (scripts/gen-clients), then:

    python examples/python/walkthrough.py [--tls] [--ca-file ca.pem]

Environment: REGISTRY_ADDR (default 127.0.0.1:50051), MESSAGING_ADDR (default 127.0.0.1:50052),
TRIBUTARY_TLS=1 and TRIBUTARY_CA_FILE (same as --tls / --ca-file).
"""

import argparse
import json
import os
import queue
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402
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
BAD_BYTES = b"plain bytes, not Confluent-framed Avro"
TIMEOUT_S = 30


class WalkthroughFailed(Exception):
    """Something was not as the walkthrough expects."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise WalkthroughFailed(what)


def channel(address: str, tls: bool, ca_file: str | None) -> grpc.Channel:
    if not tls:
        return grpc.insecure_channel(address)
    root_certificates = None
    if ca_file:
        with open(ca_file, "rb") as f:
            root_certificates = f.read()
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root_certificates))


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tls", action="store_true", default=os.environ.get("TRIBUTARY_TLS") == "1")
    parser.add_argument("--ca-file", default=os.environ.get("TRIBUTARY_CA_FILE"), help="PEM roots (default: system)")
    args = parser.parse_args()
    registry_addr = os.environ.get("REGISTRY_ADDR", "127.0.0.1:50051")
    messaging_addr = os.environ.get("MESSAGING_ADDR", "127.0.0.1:50052")
    try:
        with channel(registry_addr, args.tls, args.ca_file) as registry, channel(
            messaging_addr, args.tls, args.ca_file
        ) as messaging:
            walkthrough(registry, messaging)
    except WalkthroughFailed as failure:
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
