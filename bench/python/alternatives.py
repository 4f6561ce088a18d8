"""The Python half of `scripts/bench alternatives` (run by `alternatives-bench`, which starts the
services, writes the topic the consumers read, reads back the topics these producers write, and
prints the table).

For one record size, four rows, each bounded by --records records or --seconds seconds:

- produce, native: confluent-kafka's SerializingProducer, AvroSerializer (schema registered
  through the registry's Confluent-compatible HTTP API, TopicNameStrategy) and StringSerializer
  for the key, the messaging service's producer settings (idempotent, acks=all, murmur2_random);
- produce, gateway: the generated gRPC client, unary `Produce` with --produce-batch records per
  call (Avro as JSON by schema id, the key as text) and --produce-calls calls in flight; each
  record succeeds or fails on its own in the response;
- consume, native: DeserializingConsumer, AvroDeserializer and StringDeserializer, partitions
  assigned from the beginning, auto-commit of the offsets stored after each poll;
- consume, gateway: the generated gRPC client, `Consume` with batches of --batch-records records
  (values decoded by the service to JSON with plain unions, parsed with `json.loads`, keys as
  raw bytes decoded to str), --max-unacked, one cumulative `AckUpTo` per partition of each batch.

Every record reaches the application as a (str key, dict value) pair, and is checked against
the generator (the same as `tributary_bench::records`): a digest of its key and fields (the Avro
`float` field at float precision), per-partition offsets without gaps, and at the end every
record of the topic. The checks' time is measured and taken out of the rows' wall and CPU time.
A failed check exits with status 1 and the reason on stderr. Each row is printed on stdout as
one JSON object; progress goes to stderr.
"""

import argparse
import base64
import collections
import json
import os
import queue
import struct
import sys
import threading
import time

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
FLOAT_FIELD = "score"
FIELDS = ("id", "ts", "user", "amount", "count", "active", "country", "device", "score", "note")
class Failed(Exception):
    """A check failed: the run must exit non-zero with this reason."""


class Records:
    """The records of `tributary_bench::records::Records`, as dicts."""

    def __init__(self, note_len: int):
        self.note_len = note_len
        self.cycle = (ALPHABET * (note_len // len(ALPHABET) + 2))[: note_len + len(ALPHABET)]

    def value(self, i: int) -> dict:
        start = i % 36
        return {
            "id": i,
            "ts": 1_764_000_000_000 + i,
            "user": f"user-{i % 100_000:06d}",
            "amount": (i % 10_000) / 100.0,
            "count": i % 1000,
            "active": i % 2 == 0,
            "country": "NL",
            "device": None if i % 3 == 0 else "android",
            "score": (i % 100) / 10.0,
            "note": self.cycle[start : start + self.note_len],
        }


_FLOAT = struct.Struct("<f")


def digest(key, value):
    """A digest of a keyed record (None when the value is not shaped as the schema)."""
    if not isinstance(value, dict) or len(value) != len(FIELDS):
        return None
    try:
        fields = tuple(value[name] for name in FIELDS)
        score = _FLOAT.unpack(_FLOAT.pack(value[FLOAT_FIELD]))[0]
    except (KeyError, TypeError, struct.error):
        return None
    return hash((key, fields[:8], score, fields[9], tuple(type(f) for f in fields)))


class Delivery:
    """What a consumer delivered, checked a block at a time (the time it takes is counted in
    `checking` and taken out of the row)."""

    def __init__(self, what: str, expected: list):
        self.what = what
        self.expected = expected
        self.next_offset = {}
        self.seen = bytearray(len(expected))
        self.distinct = 0
        self.delivered = 0
        self.duplicates = 0
        self.checking = 0.0
        self.pending = []
        self.first_float = None

    def add(self, partition, offset, key, value):
        self.pending.append((partition, offset, key, value))
        if len(self.pending) >= 1000:
            self.check()

    def check(self):
        started = time.perf_counter()
        expected, seen, next_offset = self.expected, self.seen, self.next_offset
        for partition, offset, key, value in self.pending:
            self.delivered += 1
            next_ = next_offset.get(partition, 0)
            if offset > next_:
                raise Failed(f"{self.what}: partition {partition} skipped offsets {next_}..{offset}: records lost")
            if offset < next_:
                self.duplicates += 1
            else:
                next_offset[partition] = offset + 1
            d = digest(key, value)
            if d is None:
                raise Failed(f"{self.what}: record at {partition}/{offset} is not shaped as the schema: {key!r} {value!r}")
            i = value["id"]
            if not (isinstance(i, int) and 0 <= i < len(expected) and expected[i] == d):
                raise Failed(
                    f"{self.what}: record {i} at {partition}/{offset} decoded differently from what was produced: "
                    f"{key!r} {value!r}"
                )
            if self.first_float is None and value[FLOAT_FIELD] != 0:
                self.first_float = value[FLOAT_FIELD]
            if not seen[i]:
                seen[i] = 1
                self.distinct += 1
        self.pending.clear()
        self.checking += time.perf_counter() - started

    def finish(self, timed_out: bool):
        self.check()
        if not timed_out and self.distinct < len(self.expected):
            raise Failed(f"{self.what}: delivered {self.delivered} of the topic's {len(self.expected)} records")


def service_cpu(pid):
    """CPU seconds (user + system, all threads) the messaging service has used."""
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """A row's wall time, this process's CPU time (all threads) and the service's."""

    def __init__(self, pid, gateway: bool):
        self.pid = pid if gateway else None
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.service = service_cpu(self.pid)

    def row(self, direction, path, label, records, checking, timed_out, extra=None):
        service = service_cpu(self.pid)
        row = {
            "direction": direction,
            "path": path,
            "label": label,
            "records": records,
            "seconds": time.perf_counter() - self.wall - checking,
            "client_cpu": time.process_time() - self.cpu - checking,
            "service_cpu": None if service is None else service - self.service,
            "timed_out": timed_out,
        }
        row.update(extra or {})
        return row


def properties(pairs):
    return dict(pair.split("=", 1) for pair in pairs)


def registry_client(args):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    config = {"url": args.registry_url}
    if args.ca:
        config["ssl.ca.location"] = args.ca
        config["basic.auth.user.info"] = f"{args.username}:{password(args)}"
    return SchemaRegistryClient(config)


def password(args):
    with open(args.password_file) as f:
        return f.read().strip()


def native_produce(args, records):
    from confluent_kafka import SerializingProducer
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import StringSerializer

    producer = SerializingProducer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            **properties(args.producer_property),
            "key.serializer": StringSerializer("utf_8"),
            "value.serializer": AvroSerializer(registry_client(args), args.schema),
        }
    )
    outcome = {"acked": 0, "errors": []}

    def delivered(error, _message):
        if error is None:
            outcome["acked"] += 1
        else:
            outcome["errors"].append(error)

    topic = args.native_topic
    clock = Clock(args.service_pid, False)
    deadline = clock.wall + args.seconds
    sent = 0
    timed_out = False
    for i in range(args.records):
        if i % 1000 == 0 and time.perf_counter() >= deadline:
            timed_out = True
            break
        value = records.value(i)
        while True:
            try:
                producer.produce(topic, key=value["user"], value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        sent += 1
    remaining = producer.flush(60)
    row = clock.row(
        "produce",
        "native",
        "confluent-kafka SerializingProducer + AvroSerializer (dicts)",
        outcome["acked"],
        0.0,
        timed_out,
    )
    if remaining or outcome["errors"] or outcome["acked"] != sent:
        raise Failed(
            f"native producer: {outcome['acked']} of {sent} records acknowledged, {remaining} undelivered, "
            f"errors: {outcome['errors'][:3]}"
        )
    return row


def grpc_modules(args):
    sys.path.insert(0, os.path.abspath(args.gen))
    import grpc
    from tributary.messaging.v1 import messaging_pb2, messaging_pb2_grpc

    return grpc, messaging_pb2, messaging_pb2_grpc


def gateway_stub(args):
    grpc, msg, msg_grpc = grpc_modules(args)
    options = [
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.http2.max_frame_size", 1 << 20),
    ]
    if args.ca:
        with open(args.ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        authorization = "Basic " + base64.b64encode(f"{args.username}:{password(args)}".encode()).decode()

        class Basic(grpc.AuthMetadataPlugin):
            def __call__(self, context, callback):
                callback((("authorization", authorization),), None)

        credentials = grpc.composite_channel_credentials(credentials, grpc.metadata_call_credentials(Basic()))
        channel = grpc.secure_channel(args.messaging, credentials, options)
    else:
        channel = grpc.insecure_channel(args.messaging, options)
    return channel, msg, msg_grpc.MessagingServiceStub(channel)


def gateway_produce(args, records):
    channel, msg, stub = gateway_stub(args)
    topic = args.gateway_topic
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    outcome = {"acked": 0}
    calls = collections.deque()

    def settle(call):
        first, count, future = call
        results = future.result().results
        if len(results) != count:
            raise Failed(f"gateway producer: {len(results)} results for {count} records")
        for n, result in enumerate(results):
            if not result.HasField("metadata"):
                raise Failed(f"gateway producer: record {first + n} not written: {result.error}")
        outcome["acked"] += count

    ProducerRecord, schema_id = msg.ProducerRecord, args.schema_id
    clock = Clock(args.service_pid, True)
    deadline = clock.wall + args.seconds
    timed_out = False
    i = 0
    while i < args.records:
        if time.perf_counter() >= deadline:
            timed_out = True
            break
        first = i
        end = min(args.records, i + args.produce_batch)
        batch = []
        while i < end:
            value = records.value(i)
            # Nested messages as dicts: upb builds them in C (~30% cheaper than a Payload
            # object per field).
            batch.append(
                ProducerRecord(
                    topic=topic,
                    key={"text": value["user"]},
                    value={"avro": {"json": dumps(value), "schema_id": schema_id}},
                )
            )
            i += 1
        calls.append((first, end - first, stub.Produce.future(msg.ProduceRequest(records=batch))))
        while len(calls) >= args.produce_calls:
            settle(calls.popleft())
    while calls:
        settle(calls.popleft())
    row = clock.row(
        "produce",
        "gateway",
        f"gateway Produce, {args.produce_batch} dicts (json.dumps) per call, {args.produce_calls} calls in flight",
        outcome["acked"],
        0.0,
        timed_out,
    )
    channel.close()
    if outcome["acked"] != i:
        raise Failed(f"gateway producer: {outcome['acked']} of {i} records acknowledged")
    return row


def native_consume(args, expected):
    from confluent_kafka import OFFSET_BEGINNING, DeserializingConsumer, TopicPartition
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import StringDeserializer

    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            **properties(args.consumer_property),
            "group.id": f"{args.group_prefix}-py-native",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "key.deserializer": StringDeserializer("utf_8"),
            "value.deserializer": AvroDeserializer(registry_client(args)),
        }
    )
    consumer.list_topics(args.source, timeout=10)
    delivery = Delivery(f"native consumer of {args.source}", expected)
    clock = Clock(args.service_pid, False)
    deadline = clock.wall + args.seconds
    consumer.assign([TopicPartition(args.source, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    received = 0
    timed_out = False
    quiet = time.perf_counter()
    poll, add = consumer.poll, delivery.add
    while received < len(expected):
        message = poll(0.1)
        now = time.perf_counter()
        if now >= deadline:
            timed_out = True
            break
        if message is None:
            if now - quiet > 30:
                raise Failed(f"native consumer: no record for 30 s after {received}")
            continue
        quiet = now
        if message.error() is not None:
            raise Failed(f"native consumer: {message.error()}")
        add(message.partition(), message.offset(), message.key(), message.value())
        received += 1
    delivery.finish(timed_out)
    row = clock.row(
        "consume",
        "native",
        "confluent-kafka DeserializingConsumer + AvroDeserializer (dicts), auto-commit",
        received,
        delivery.checking,
        timed_out,
        {"float_as": repr(delivery.first_float)},
    )
    consumer.close()
    return row


def gateway_consume(args, expected):
    channel, msg, stub = gateway_stub(args)
    requests = queue.SimpleQueue()
    requests.put(
        msg.ConsumeRequest(
            subscription=msg.Subscription(
                group_id=f"{args.group_prefix}-py-gateway",
                partitions=[msg.TopicPartition(topic=args.source, partition=p) for p in range(args.partitions)],
                start=msg.START_POSITION_EARLIEST,
                value_format=msg.PAYLOAD_FORMAT_AVRO_PLAIN,
                key_format=msg.PAYLOAD_FORMAT_RAW,
                max_unacked=args.max_unacked,
                max_batch_records=args.batch_records,
            )
        )
    )
    done = object()

    def request_stream():
        while True:
            request = requests.get()
            if request is done:
                return
            yield request

    delivery = Delivery(f"gateway consumer of {args.source}", expected)
    loads = json.loads
    clock = Clock(args.service_pid, True)
    deadline = clock.wall + args.seconds
    responses = stub.Consume(request_stream())
    received = 0
    timed_out = False
    source = args.source
    add = delivery.add
    for response in responses:
        if response.WhichOneof("kind") != "batch":
            continue
        up_to = {}
        for record in response.batch.records:
            value = record.value
            if value.HasField("error") or value.WhichOneof("data") != "json":
                raise Failed(f"gateway consumer: value not decoded: {value}")
            partition, offset = record.partition, record.offset
            add(partition, offset, record.key.raw.decode(), loads(value.json))
            up_to[partition] = offset
            received += 1
        requests.put(
            msg.ConsumeRequest(
                acks=msg.Acks(up_to=[msg.AckUpTo(topic=source, partition=p, offset=o) for p, o in up_to.items()])
            )
        )
        if received >= len(expected):
            break
        if time.perf_counter() >= deadline:
            timed_out = True
            break
    else:
        raise Failed(f"gateway consumer: the stream ended after {received} of {len(expected)} records")
    delivery.finish(timed_out)
    row = clock.row(
        "consume",
        "gateway",
        f"gateway Consume, batches of <= {args.batch_records}, max_unacked {args.max_unacked}, json.loads to dicts",
        received,
        delivery.checking,
        timed_out,
        {"float_as": repr(delivery.first_float)},
    )
    requests.put(done)
    responses.cancel()
    channel.close()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gen", required=True, help="the generated Python client (scripts/gen-clients python)")
    parser.add_argument("--messaging", required=True, help="the messaging service, host:port")
    parser.add_argument("--registry-url", required=True, help="the registry's HTTP API")
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--ca", help="the services' CA (TLS + basic authentication); none: plaintext")
    parser.add_argument("--username")
    parser.add_argument("--password-file")
    parser.add_argument("--schema", required=True, help="the records' Avro schema (tributary_bench::records::SCHEMA)")
    parser.add_argument("--size", required=True, help="the label of the record size")
    parser.add_argument("--note-len", type=int, required=True)
    parser.add_argument("--schema-id", type=int, required=True)
    parser.add_argument("--source", required=True, help="the topic the consumers read")
    parser.add_argument("--source-records", type=int, required=True)
    parser.add_argument("--native-topic", required=True)
    parser.add_argument("--gateway-topic", required=True)
    parser.add_argument("--group-prefix", required=True)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--batch-records", type=int, default=2000)
    parser.add_argument("--max-unacked", type=int, default=20000)
    parser.add_argument("--produce-batch", type=int, default=1000, help="records per gateway Produce call")
    parser.add_argument(
        "--produce-calls",
        type=int,
        default=16,
        help="gateway Produce calls in flight (a call is answered when its slowest record is written)",
    )
    parser.add_argument("--producer-property", action="append", default=[])
    parser.add_argument("--consumer-property", action="append", default=[])
    parser.add_argument("--service-pid", type=int)
    parser.add_argument("--only", choices=["all", "produce", "consume"], default="all")
    args = parser.parse_args()

    records = Records(args.note_len)
    started = time.perf_counter()
    expected = [digest(f"user-{i % 100_000:06d}", records.value(i)) for i in range(args.source_records)]
    print(f"python {args.size}: {len(expected)} digests in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    # The checks keep no cycles: the collector would only walk the records buffered for them.
    import gc

    gc.disable()
    rows = []
    try:
        if args.only in ("all", "produce"):
            for name, produce in (("native", native_produce), ("gateway", gateway_produce)):
                print(f"python {args.size}: {name} producer", file=sys.stderr)
                rows.append(produce(args, records))
                gc.collect()
        if args.only in ("all", "consume"):
            for name, consume in (("native", native_consume), ("gateway", gateway_consume)):
                print(f"python {args.size}: {name} consumer", file=sys.stderr)
                rows.append(consume(args, expected))
                gc.collect()
    except Failed as failure:
        print(f"alternatives.py: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    floats = {f"{row['path']} {row['direction']}": row["float_as"] for row in rows if "float_as" in row}
    if floats:
        print(f"python {args.size}: the first non-zero `{FLOAT_FIELD}` (Avro float) as delivered: {floats}", file=sys.stderr)
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
