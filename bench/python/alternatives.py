#!/usr/bin/env python3
"""Python: the messaging gateway's generated gRPC client against confluent-kafka's native
serde, on the same broker and the same records (issue #21).

For each record size (~100 B and ~1 KiB of Avro, keyed, one 10-field schema), on a topic of 10
partitions each:

- native produce: `SerializingProducer` with `StringSerializer` keys and `AvroSerializer`
  values against our registry's Confluent API, over the broker's SASL_SSL listener (as the
  gateway reaches Kafka);
- gateway produce: `ProduceStream` of the generated client, each value a dict turned into JSON
  (`AvroPayload` with the schema id), each key a text payload, every acknowledgement read; and
  the same records in unary `Produce` calls of 500, 8 calls in flight (each record still gets
  its own result: what a well-informed Python user does, since grpcio pays per stream message);
- native consume: `DeserializingConsumer` with `AvroDeserializer`, every record to a dict;
- gateway consume: one `Consume` stream, batches of 500 records (`max_batch_records`), Avro as
  plain JSON (`PAYLOAD_FORMAT_AVRO_PLAIN`), every value parsed to a dict with `json.loads`,
  acknowledged cumulatively per batch (at-least-once, as the service guarantees).

Records/s delivered to the application, and CPU seconds per million records, this client's
(`time.process_time`) and the messaging service's (`/proc/<pid>/stat`) apart. Fails loudly
(exit 1, the reason printed) when a path delivers fewer records than were produced, when the
gateway's dicts differ from the native path's, or when a produce is not acknowledged.

Run by `scripts/bench alternatives`, which starts the stack and its services (release builds)
and passes their endpoints and credentials.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

SCHEMA = {
    "type": "record",
    "name": "Event",
    "namespace": "dev.tributary.bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "ts", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "count", "type": "int"},
        {"name": "active", "type": "boolean"},
        {"name": "country", "type": "string"},
        {"name": "device", "type": ["null", "string"], "default": None},
        {"name": "score", "type": "double"},
        {"name": "note", "type": "string"},
    ],
}
ROOT = Path(__file__).resolve().parents[2]


def fail(message: str) -> None:
    print(f"alternatives: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def records(count: int, target: int) -> list:
    """`count` (key, value) pairs whose Avro encoding is about `target` bytes."""
    base = 60  # the Avro bytes of the other fields, about
    note_len = max(0, target - base)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    out = []
    for i in range(count):
        note = (alphabet[i % 36:] + alphabet * (note_len // 36 + 2))[:note_len]
        out.append(
            (
                f"user-{i % 1000:06}",
                {
                    "id": i,
                    "ts": 1_764_000_000_000 + i,
                    "user": f"user-{i % 100_000:06}",
                    "amount": (i % 10_000) / 100.0,
                    "count": i % 1000,
                    "active": i % 2 == 0,
                    "country": "NL",
                    "device": None if i % 3 == 0 else "android",
                    "score": (i % 100) / 10.0,
                    "note": note,
                },
            )
        )
    return out


def digest(pairs) -> str:
    """Order-independent digest of (key, value dict) pairs."""
    lines = sorted(f"{key}\t{json.dumps(value, sort_keys=True)}" for key, value in pairs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def service_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = time.monotonic()
        self.client = time.process_time()
        self.service = service_cpu(pid)

    def stop(self, count: int) -> dict:
        wall = time.monotonic() - self.wall
        return {
            "records": count,
            "seconds": wall,
            "rate": count / wall if wall > 0 else 0.0,
            "client_cpu_per_m": (time.process_time() - self.client) / max(count, 1) * 1e6,
            "service_cpu_per_m": (service_cpu(self.pid) - self.service) / max(count, 1) * 1e6,
        }


def stubs():
    from grpc_tools import protoc
    import importlib
    import importlib.resources as resources

    out = Path(tempfile.mkdtemp(prefix="alternatives-stubs-"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    proto_root = ROOT / "proto"
    status = protoc.main(
        ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}",
         str(proto_root / "tributary" / "messaging" / "v1" / "messaging.proto")]
    )
    if status != 0:
        fail("grpc_tools.protoc failed on messaging.proto")
    for folder in (out / "tributary", out / "tributary" / "messaging", out / "tributary" / "messaging" / "v1"):
        (folder / "__init__.py").touch()
    sys.path.insert(0, str(out))
    return (importlib.import_module("tributary.messaging.v1.messaging_pb2"),
            importlib.import_module("tributary.messaging.v1.messaging_pb2_grpc"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000, help="records per size (default 200000)")
    parser.add_argument("--large-records", type=int, default=None, help="records of ~1 KiB (default: --records / 4)")
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--messaging-pid", type=int, required=True)
    parser.add_argument("--messaging-addr", default=os.environ.get("MESSAGING_GRPC_ADDR", "127.0.0.1:50052"))
    parser.add_argument("--registry-url", default=os.environ.get("REGISTRY_HTTP_URL", "https://127.0.0.1:8081"))
    args = parser.parse_args()

    import grpc
    from confluent_kafka import DeserializingConsumer, SerializingProducer
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import StringDeserializer, StringSerializer

    ca = os.environ["TRIBUTARY_CA_FILE"]
    password = Path(os.environ["TRIBUTARY_PASSWORD_FILE"]).read_text().splitlines()[0]
    kafka = {
        "bootstrap.servers": os.environ["KAFKA_SASL_SSL_BOOTSTRAP_SERVERS"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": os.environ.get("KAFKA_SASL_USERNAME", "tributary"),
        "sasl.password": Path(os.environ["KAFKA_SASL_PASSWORD_FILE"]).read_text().splitlines()[0],
        "ssl.ca.location": ca,
    }
    registry = SchemaRegistryClient({"url": args.registry_url, "basic.auth.user.info": f"admin:{password}", "ssl.ca.location": ca})
    pb2, pb2_grpc = stubs()
    authorization = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
    channel = grpc.secure_channel(
        args.messaging_addr,
        grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(Path(ca).read_bytes()),
            grpc.metadata_call_credentials(lambda context, callback: callback((("authorization", authorization),), None)),
        ),
        options=[("grpc.max_receive_message_length", 64 << 20)],
    )
    stub = pb2_grpc.MessagingServiceStub(channel)
    admin = AdminClient(kafka)
    run = uuid.uuid4().hex[:8]
    rows = []
    for label, target, count in [("~100 B", 100, args.records), ("~1 KiB", 1024, args.large_records or max(args.records // 4, 1))]:
        data = records(count, target)
        expected = digest(data)
        native_topic, gateway_topic = f"alt-{run}-{target}-native", f"alt-{run}-{target}-gateway"
        for future in admin.create_topics([NewTopic(t, num_partitions=args.partitions, replication_factor=1) for t in (native_topic, gateway_topic)]).values():
            future.result(timeout=60)
        time.sleep(1)
        schema_id = registry.register_schema(f"{gateway_topic}-value", Schema(json.dumps(SCHEMA), "AVRO"))
        print(f"alternatives: {label}: {count} records, topics {native_topic} / {gateway_topic}", file=sys.stderr)

        # Native produce.
        producer = SerializingProducer({**kafka, "key.serializer": StringSerializer(), "value.serializer": AvroSerializer(registry, json.dumps(SCHEMA)),
                                        "linger.ms": 5, "enable.idempotence": True, "acks": "all"})
        failures = []
        delivered = [0]

        def on_delivery(error, _message):
            if error is not None:
                failures.append(error)
            else:
                delivered[0] += 1

        clock = Clock(args.messaging_pid)
        for key, value in data:
            while True:
                try:
                    producer.produce(native_topic, key=key, value=value, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        if producer.flush(120) != 0:
            fail("native produce: records not delivered within 120 s")
        if failures or delivered[0] != count:
            fail(f"native produce: {delivered[0]} of {count} acknowledged, {len(failures)} failed: {failures[:3]}")
        rows.append((label, "produce", "native: confluent-kafka SerializingProducer + AvroSerializer", clock.stop(count)))

        # Gateway produce.
        def requests():
            for key, value in data:
                yield pb2.ProduceStreamRequest(record=pb2.ProducerRecord(
                    topic=gateway_topic,
                    key=pb2.Payload(text=key),
                    value=pb2.Payload(avro=pb2.AvroPayload(json=json.dumps(value), schema_id=schema_id)),
                ))

        clock = Clock(args.messaging_pid)
        acknowledged, errors = 0, []
        for response in stub.ProduceStream(requests(), timeout=600):
            if response.result.WhichOneof("result") == "metadata":
                acknowledged += 1
            else:
                errors.append(response.result.error.message)
        if errors or acknowledged != count:
            fail(f"gateway produce: {acknowledged} of {count} acknowledged, errors: {errors[:3]}")
        rows.append((label, "produce", "gateway: generated gRPC client, ProduceStream (dict -> JSON)", clock.stop(count)))

        # Gateway produce, batched: unary Produce calls of 500 records, 8 in flight (each record
        # still gets its own result), into a topic of its own.
        batched_topic = f"{gateway_topic}-batched"
        for future in admin.create_topics([NewTopic(batched_topic, num_partitions=args.partitions, replication_factor=1)]).values():
            future.result(timeout=60)
        time.sleep(1)
        clock = Clock(args.messaging_pid)
        acknowledged, errors, in_flight = 0, [], []

        def settle(call):
            nonlocal acknowledged
            for result in call.result(timeout=600).results:
                if result.WhichOneof("result") == "metadata":
                    acknowledged += 1
                else:
                    errors.append(result.error.message)

        for start in range(0, count, 500):
            batch = [
                pb2.ProducerRecord(
                    topic=batched_topic,
                    key=pb2.Payload(text=key),
                    value=pb2.Payload(avro=pb2.AvroPayload(json=json.dumps(value), schema_id=schema_id)),
                )
                for key, value in data[start:start + 500]
            ]
            in_flight.append(stub.Produce.future(pb2.ProduceRequest(records=batch), timeout=600))
            if len(in_flight) >= 8:
                settle(in_flight.pop(0))
        for call in in_flight:
            settle(call)
        if errors or acknowledged != count:
            fail(f"gateway batched produce: {acknowledged} of {count} acknowledged, errors: {errors[:3]}")
        rows.append((label, "produce", "gateway: generated gRPC client, Produce 500 per call, 8 in flight (dict -> JSON)", clock.stop(count)))

        # Native consume.
        consumer = DeserializingConsumer({**kafka, "group.id": f"alt-{run}-{target}-native", "auto.offset.reset": "earliest",
                                          "key.deserializer": StringDeserializer(), "value.deserializer": AvroDeserializer(registry)})
        clock = Clock(args.messaging_pid)
        consumer.subscribe([native_topic])
        native = []
        deadline = time.monotonic() + 300
        while len(native) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                fail(f"native consume: {message.error()}")
            native.append((message.key(), message.value()))
        row = clock.stop(len(native))
        consumer.close()
        if len(native) != count:
            fail(f"native consume: {len(native)} of {count} records")
        if digest(native) != expected:
            fail("native consume: the records read differ from those produced")
        rows.append((label, "consume", "native: confluent-kafka DeserializingConsumer + AvroDeserializer", row))

        # Gateway consume: batches, cumulative acks per partition.
        import queue

        outgoing = queue.Queue()
        outgoing.put(pb2.ConsumeRequest(subscription=pb2.Subscription(
            group_id=f"alt-{run}-{target}-gateway", topics=[gateway_topic], start=pb2.START_POSITION_EARLIEST,
            value_format=pb2.PAYLOAD_FORMAT_AVRO_PLAIN, key_format=pb2.PAYLOAD_FORMAT_RAW,
            max_batch_records=500, max_unacked=20_000,
        )))

        def consume_requests():
            while True:
                item = outgoing.get()
                if item is None:
                    return
                yield item

        clock = Clock(args.messaging_pid)
        gateway = []
        responses = stub.Consume(consume_requests(), timeout=600)
        for response in responses:
            kind = response.WhichOneof("kind")
            if kind == "rebalance":
                continue
            batch = response.batch.records if kind == "batch" else [response.record]
            last = {}
            for record in batch:
                if record.value.HasField("error") and record.value.error.message:
                    fail(f"gateway consume: a record could not be decoded: {record.value.error.message}")
                gateway.append((record.key.raw.decode(), json.loads(record.value.json)))
                last[(record.topic, record.partition)] = record.offset
            outgoing.put(pb2.ConsumeRequest(acks=pb2.Acks(up_to=[pb2.AckUpTo(topic=t, partition=p, offset=o) for (t, p), o in last.items()])))
            if len(gateway) >= count:
                break
        row = clock.stop(len(gateway))
        outgoing.put(None)
        responses.cancel()
        if len(gateway) != count:
            fail(f"gateway consume: {len(gateway)} of {count} records")
        if digest(gateway) != expected:
            fail("gateway consume: the dicts differ from the native path's")
        rows.append((label, "consume", "gateway: generated gRPC client, Consume batches of 500 (JSON -> dict)", row))
        admin.delete_topics([native_topic, gateway_topic, batched_topic])

    print("| record | direction | path | records | records/s | client CPU s / 1M records | service CPU s / 1M records | gateway/native (goal >= 1.0) |")
    print("|---|---|---|--:|--:|--:|--:|---|")
    for index, (label, direction, path, row) in enumerate(rows):
        ratio = "–"
        if path.startswith("gateway"):
            native = next(r for r in rows if r[0] == label and r[1] == direction and r[2].startswith("native"))[3]["rate"]
            value = row["rate"] / native
            ratio = f"{value:.2f} ({'meets' if value >= 1.0 else 'BELOW'} 1.0)"
        print(f"| {label} | {direction} | {path} | {row['records']} | {row['rate']:.0f} | {row['client_cpu_per_m']:.1f} | {row['service_cpu_per_m']:.1f} | {ratio} |")
    print("\n(records/s delivered to the application as dicts; CPU: this Python process's and the messaging service's; "
          "every path's records checked against the generated ones by digest)")


if __name__ == "__main__":
    main()
