"""The messaging service's Avro against confluent-kafka's, through the stack's real Kafka:

- records produced through our gRPC Produce (Avro from JSON, inline schemas registered under
  TopicNameStrategy, key and value) are read by a plain `confluent_kafka.Consumer` with
  `AvroDeserializer` pointed at our registry's HTTP API;
- records written by `confluent_kafka.Producer` with `AvroSerializer` (auto-registering) are read
  through our gRPC Consume stream as JSON.

Both directions cover keys and values, a ["null","string"] union (both branches) and the logical
types date, timestamp-millis, decimal and uuid. Python's deserializer returns date, datetime,
Decimal and UUID objects while our JSON carries Avro's underlying forms (days, epoch millis,
ISO-8859-1 byte strings of the two's-complement unscaled value, UUID text), so values are
compared after converting our JSON to the Python objects.
"""

import datetime
import decimal
import json
import queue
import struct
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import BOOTSTRAP

KEY_SCHEMA = {
    "type": "record",
    "name": "ReadingKey",
    "namespace": "com.example.interop",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}

VALUE_SCHEMA = {
    "type": "record",
    "name": "Reading",
    "namespace": "com.example.interop",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "nick", "type": ["null", "string"], "default": None},
        {"name": "born", "type": {"type": "int", "logicalType": "date"}},
        {"name": "seen_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
    ],
}

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = datetime.date(1970, 1, 1)

# The data, as Python's Avro serde has it: keys and values.
RECORDS = [
    (
        {"id": uuid.UUID("6f1c3a9e-2b4d-4e8f-9a0b-1c2d3e4f5a6b"), "day": datetime.date(2024, 2, 29)},
        {
            "name": "ann",
            "nick": "annie",
            "born": datetime.date(1990, 7, 14),
            "seen_at": datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            "price": decimal.Decimal("12.50"),
            "id": uuid.UUID("00000000-0000-4000-8000-000000000001"),
        },
    ),
    (
        {"id": uuid.UUID("a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"), "day": datetime.date(1969, 12, 31)},
        {
            "name": "bob",
            "nick": None,
            "born": datetime.date(1960, 1, 1),
            "seen_at": datetime.datetime(1969, 12, 31, 23, 59, 59, 1000, tzinfo=UTC),
            "price": decimal.Decimal("-1234567.89"),
            "id": uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff"),
        },
    ),
]


def millis(moment: datetime.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def days(day: datetime.date) -> int:
    return (day - EPOCH_DAY).days


def framed_id(payload: bytes) -> int:
    assert payload[0] == 0, "Confluent wire format: magic byte 0"
    return struct.unpack(">i", payload[1:5])[0]


# Our JSON forms -> Python objects.


def decimal_from_avro_json(text: str, scale: int) -> decimal.Decimal:
    """A decimal's bytes, as Avro's JSON encoding writes them (one ISO-8859-1 character a byte,
    big-endian two's complement of the unscaled value), as a Decimal."""
    unscaled = int.from_bytes(text.encode("latin-1"), "big", signed=True)
    return decimal.Decimal(unscaled).scaleb(-scale)


def untag(value, tagged: bool):
    if value is None or not tagged:
        return value
    assert isinstance(value, dict) and len(value) == 1, f"expected a tagged union value, got {value!r}"
    ((branch, inner),) = value.items()
    assert branch == "string", f"unexpected union branch {branch!r}"
    return inner


def key_from_json(key: dict) -> dict:
    assert set(key) == {"id", "day"}, key
    assert isinstance(key["day"], int), f"date as days since the epoch, got {key['day']!r}"
    return {"id": uuid.UUID(key["id"]), "day": EPOCH_DAY + datetime.timedelta(days=key["day"])}


def value_from_json(value: dict, tagged: bool) -> dict:
    assert set(value) == {field["name"] for field in VALUE_SCHEMA["fields"]}, value
    assert isinstance(value["born"], int), f"date as days since the epoch, got {value['born']!r}"
    assert isinstance(value["seen_at"], int), f"timestamp-millis as epoch millis, got {value['seen_at']!r}"
    assert isinstance(value["price"], str), f"decimal bytes as an ISO-8859-1 string, got {value['price']!r}"
    return {
        "name": value["name"],
        "nick": untag(value["nick"], tagged),
        "born": EPOCH_DAY + datetime.timedelta(days=value["born"]),
        "seen_at": EPOCH + datetime.timedelta(milliseconds=value["seen_at"]),
        "price": decimal_from_avro_json(value["price"], 2),
        "id": uuid.UUID(value["id"]),
    }


# Python objects -> the JSON we send to Produce. The first record uses the friendly textual
# forms our service accepts, the second Avro's underlying JSON forms.


def key_to_json(key: dict, friendly: bool) -> dict:
    return {"id": str(key["id"]), "day": key["day"].isoformat() if friendly else days(key["day"])}


def value_to_json(value: dict, friendly: bool) -> dict:
    if friendly:
        return {
            "name": value["name"],
            "nick": value["nick"],
            "born": value["born"].isoformat(),
            "seen_at": value["seen_at"].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "price": str(value["price"]),
            "id": str(value["id"]),
        }
    sign, digits, exponent = value["price"].as_tuple()
    assert exponent == -2
    unscaled = int("".join(map(str, digits))) * (-1 if sign else 1)
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return {
        "name": value["name"],
        "nick": None if value["nick"] is None else {"string": value["nick"]},
        "born": days(value["born"]),
        "seen_at": millis(value["seen_at"]),
        "price": unscaled.to_bytes(length, "big", signed=True).decode("latin-1"),
        "id": str(value["id"]),
    }


def avro_payload(pb2, schema: dict, datum: dict):
    return pb2.Payload(
        avro=pb2.AvroPayload(
            json=json.dumps(datum),
            inline=pb2.InlineSchema(
                schema=json.dumps(schema),
                strategy=pb2.SUBJECT_NAME_STRATEGY_TOPIC_NAME,
            ),
        )
    )


class ConsumeStream:
    """A Consume stream of the messaging service: the subscription first, then nothing until
    closed."""

    def __init__(self, messaging, pb2, subscription) -> None:
        self.requests = queue.Queue()
        self.requests.put(pb2.ConsumeRequest(subscription=subscription))
        self.call = messaging.stub.Consume(iter(self.requests.get, None), timeout=60)

    def records(self, count: int) -> list:
        records = []
        for response in self.call:
            if response.WhichOneof("kind") == "record":
                records.append(response.record)
                if len(records) == count:
                    break
        assert len(records) == count, f"the Consume stream ended after {len(records)} of {count} records"
        return records

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()


def consume_with_our_service(messaging, pb2, topic: str, count: int, tagged: bool) -> list:
    form = pb2.PAYLOAD_FORMAT_AVRO_TAGGED if tagged else pb2.PAYLOAD_FORMAT_AVRO_PLAIN
    stream = ConsumeStream(
        messaging,
        pb2,
        pb2.Subscription(
            group_id=f"interop-{uuid.uuid4().hex}",
            partitions=[pb2.TopicPartition(topic=topic, partition=0)],
            start=pb2.START_POSITION_EARLIEST,
            key_format=form,
            value_format=form,
        ),
    )
    try:
        return stream.records(count)
    finally:
        stream.close()


def consume_with_confluent(topic: str, count: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"interop-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    try:
        for _ in range(600):
            if len(messages) >= count:
                break
            message = consumer.poll(0.1)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
    finally:
        consumer.close()
    assert len(messages) == count, f"consumed {len(messages)} of {count} messages from {topic}"
    return messages


def payload_json(payload) -> object:
    assert not payload.HasField("error"), f"decoding failed: {payload.error}"
    assert payload.WhichOneof("data") == "json", f"expected JSON, got {payload}"
    return json.loads(payload.json)


def test_records_produced_through_messaging_are_read_by_confluent_avro_deserializer(
    registry, messaging, messaging_pb, topic
):
    pb2 = messaging_pb.pb2
    requests = [
        pb2.ProducerRecord(
            topic=topic,
            key=avro_payload(pb2, KEY_SCHEMA, key_to_json(key, friendly=(n == 0))),
            value=avro_payload(pb2, VALUE_SCHEMA, value_to_json(value, friendly=(n == 0))),
        )
        for n, (key, value) in enumerate(RECORDS)
    ]
    results = messaging.stub.Produce(pb2.ProduceRequest(records=requests), timeout=60).results
    assert len(results) == len(RECORDS)
    for result in results:
        assert result.WhichOneof("result") == "metadata", f"not produced: {result.error}"

    # Registered under TopicNameStrategy subjects, as Confluent's registry client sees them.
    client = SchemaRegistryClient(registry.client_config())
    key_id = client.get_latest_version(f"{topic}-key").schema_id
    value_id = client.get_latest_version(f"{topic}-value").schema_id
    for result in results:
        assert result.metadata.key_schema_id == key_id
        assert result.metadata.value_schema_id == value_id

    key_deserializer = AvroDeserializer(client)
    value_deserializer = AvroDeserializer(client)
    messages = consume_with_confluent(topic, len(RECORDS))
    for message, (key, value) in zip(messages, RECORDS):
        assert framed_id(message.key()) == key_id
        assert framed_id(message.value()) == value_id
        assert key_deserializer(message.key(), SerializationContext(topic, MessageField.KEY)) == key
        assert value_deserializer(message.value(), SerializationContext(topic, MessageField.VALUE)) == value


def test_records_produced_by_confluent_avro_serializer_are_consumed_through_messaging(
    registry, messaging, messaging_pb, topic
):
    pb2 = messaging_pb.pb2
    client = SchemaRegistryClient(registry.client_config())
    key_serializer = AvroSerializer(client, json.dumps(KEY_SCHEMA), conf={"auto.register.schemas": True})
    value_serializer = AvroSerializer(client, json.dumps(VALUE_SCHEMA), conf={"auto.register.schemas": True})
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    errors = []
    for key, value in RECORDS:
        producer.produce(
            topic,
            key=key_serializer(key, SerializationContext(topic, MessageField.KEY)),
            value=value_serializer(value, SerializationContext(topic, MessageField.VALUE)),
            on_delivery=lambda error, _message: errors.append(error) if error else None,
        )
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered to Kafka at {BOOTSTRAP}"
    assert errors == []
    key_id = client.get_latest_version(f"{topic}-key").schema_id
    value_id = client.get_latest_version(f"{topic}-value").schema_id

    for tagged in (True, False):
        records = consume_with_our_service(messaging, pb2, topic, len(RECORDS), tagged)
        for record, (key, value) in zip(records, RECORDS):
            assert record.key.schema_id == key_id
            assert record.value.schema_id == value_id
            key_json = payload_json(record.key)
            value_json = payload_json(record.value)
            assert key_from_json(key_json) == key
            assert value_from_json(value_json, tagged) == value
            # The exact JSON forms: Avro's JSON encoding, unions per the requested style.
            assert key_json == key_to_json(key, friendly=False)
            expected = value_to_json(value, friendly=False)
            if not tagged:
                expected["nick"] = value["nick"]
            assert value_json == expected
