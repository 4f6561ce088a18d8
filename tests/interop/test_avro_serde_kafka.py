"""confluent-kafka's AvroSerializer and AvroDeserializer against the registry, producing to and
consuming from the stack's real Kafka: keys and values, unions and logical types, with
auto-registration on and off, use.latest.version and normalize.schemas."""

import datetime
import decimal
import json
import struct
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import BOOTSTRAP

KEY_SCHEMA = {
    "type": "record",
    "name": "OrderKey",
    "namespace": "com.example.orders",
    "fields": [{"name": "id", "type": {"type": "string", "logicalType": "uuid"}}, {"name": "region", "type": "int"}],
}

VALUE_SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "com.example.orders",
    "fields": [
        {"name": "customer", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ship_on", "type": {"type": "int", "logicalType": "date"}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
        {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
            {"name": "sku", "type": "string"},
            {"name": "quantity", "type": "int"},
        ]}}},
        {"name": "tags", "type": {"type": "map", "values": "string"}},
        {"name": "payment", "type": ["null", "string", "long", {"type": "fixed", "name": "Token", "size": 4}], "default": None},
    ],
}


def orders(count: int):
    for n in range(count):
        key = {"id": uuid.UUID(int=n + 1), "region": n % 3}
        value = {
            "customer": f"customer-{n}",
            "note": None if n % 2 else f"note {n}",
            "amount": decimal.Decimal(f"{n}.{n % 100:02d}"),
            "placed_at": datetime.datetime(2024, 1, 1, 12, 0, n % 60, 123000, tzinfo=datetime.timezone.utc),
            "ship_on": datetime.date(2024, 2, 1 + n % 28),
            "status": ["NEW", "PAID", "SHIPPED"][n % 3],
            "lines": [{"sku": f"sku-{i}", "quantity": i + 1} for i in range(n % 3)],
            "tags": {"channel": "web", "n": str(n)},
            "payment": [None, f"card-{n}", n * 1000, b"\x00\x01\x02\x03"][n % 4],
        }
        yield key, value


def produce(topic: str, records, key_serializer, value_serializer, kafka: dict = None) -> None:
    """Produces `records` to `topic`, over Kafka's PLAINTEXT listener unless `kafka` gives
    other connection settings (the SASL_SSL listener's)."""
    kafka = kafka or {"bootstrap.servers": BOOTSTRAP}
    producer = Producer({**kafka, "linger.ms": 5})
    errors = []
    for key, value in records:
        producer.produce(
            topic,
            key=key_serializer(key, SerializationContext(topic, MessageField.KEY)) if key_serializer else key,
            value=value_serializer(value, SerializationContext(topic, MessageField.VALUE)),
            on_delivery=lambda error, _message: errors.append(error) if error else None,
        )
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered to Kafka at {kafka['bootstrap.servers']}"
    assert errors == []


def consume(topic: str, count: int, kafka: dict = None) -> list:
    """Consumes `count` records of `topic` from the start, over Kafka's PLAINTEXT listener
    unless `kafka` gives other connection settings."""
    consumer = Consumer(
        {
            **(kafka or {"bootstrap.servers": BOOTSTRAP}),
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


def framed_id(payload: bytes) -> int:
    assert payload[0] == 0, "Confluent wire format: magic byte 0"
    return struct.unpack(">i", payload[1:5])[0]


def test_auto_registered_keys_and_values_round_trip_through_kafka(registry, client, topic):
    key_serializer = AvroSerializer(client, json.dumps(KEY_SCHEMA))
    value_serializer = AvroSerializer(client, json.dumps(VALUE_SCHEMA))
    sent = list(orders(24))
    produce(topic, sent, key_serializer, value_serializer)

    assert sorted(client.get_subjects()) == [f"{topic}-key", f"{topic}-value"]
    key_id = client.get_latest_version(f"{topic}-key").schema_id
    value_id = client.get_latest_version(f"{topic}-value").schema_id

    # Fresh clients, so every schema is fetched from the registry by id.
    reader = SchemaRegistryClient(registry.client_config())
    key_deserializer = AvroDeserializer(reader)
    value_deserializer = AvroDeserializer(reader)
    received = consume(topic, len(sent))
    for message, (key, value) in zip(received, sent):
        assert framed_id(message.key()) == key_id
        assert framed_id(message.value()) == value_id
        assert key_deserializer(message.key(), SerializationContext(topic, MessageField.KEY)) == key
        assert value_deserializer(message.value(), SerializationContext(topic, MessageField.VALUE)) == value


def test_auto_register_off_needs_a_registered_schema(client, topic):
    serializer = AvroSerializer(client, json.dumps(VALUE_SCHEMA), conf={"auto.register.schemas": False})
    _, value = next(orders(1))
    with pytest.raises(SchemaRegistryError) as missing:
        serializer(value, SerializationContext(topic, MessageField.VALUE))
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40401)

    # Registered in another spelling (whitespace, key order): the lookup still finds it.
    reordered = {"fields": VALUE_SCHEMA["fields"], "namespace": VALUE_SCHEMA["namespace"], "name": "Order", "type": "record"}
    schema_id = client.register_schema(f"{topic}-value", Schema(json.dumps(reordered, indent=4), "AVRO"))
    serializer = AvroSerializer(client, json.dumps(VALUE_SCHEMA), conf={"auto.register.schemas": False})
    produce(topic, [(b"k", value)], None, serializer)
    (message,) = consume(topic, 1)
    assert framed_id(message.value()) == schema_id
    assert AvroDeserializer(client)(message.value(), SerializationContext(topic, MessageField.VALUE)) == value


def test_use_latest_version_writes_and_reads_with_the_latest_schema(client, topic):
    v1 = {"type": "record", "name": "Event", "fields": [{"name": "id", "type": "long"}]}
    v2 = {
        "type": "record",
        "name": "Event",
        "fields": [{"name": "id", "type": "long"}, {"name": "source", "type": ["null", "string"], "default": None}],
    }
    subject = f"{topic}-value"
    client.register_schema(subject, Schema(json.dumps(v1), "AVRO"))
    v2_id = client.register_schema(subject, Schema(json.dumps(v2), "AVRO"))

    # The application still holds v1, but writes with the subject's latest version.
    serializer = AvroSerializer(client, json.dumps(v1), conf={"auto.register.schemas": False, "use.latest.version": True})
    produce(topic, [(b"k", {"id": 7, "source": "app"})], None, serializer)
    (message,) = consume(topic, 1)
    assert framed_id(message.value()) == v2_id
    reader = AvroDeserializer(client, conf={"use.latest.version": True})
    assert reader(message.value(), SerializationContext(topic, MessageField.VALUE)) == {"id": 7, "source": "app"}


def test_normalize_schemas_dedups_equivalent_spellings(client, topic):
    terse = {"type": "record", "name": "Reading", "namespace": "com.example", "fields": [{"name": "value", "type": "double"}]}
    verbose = {
        "type": "record",
        "name": "com.example.Reading",
        "fields": [{"name": "value", "type": {"type": "double"}}],
    }
    first = AvroSerializer(client, json.dumps(terse), conf={"normalize.schemas": True})
    second = AvroSerializer(client, json.dumps(verbose), conf={"normalize.schemas": True})
    produce(topic, [(b"a", {"value": 1.5})], None, first)
    produce(topic, [(b"b", {"value": 2.5})], None, second)
    messages = consume(topic, 2)
    assert framed_id(messages[0].value()) == framed_id(messages[1].value())
    assert client.get_versions(f"{topic}-value") == [1]
    deserializer = AvroDeserializer(client)
    assert [deserializer(m.value(), SerializationContext(topic, MessageField.VALUE)) for m in messages] == [{"value": 1.5}, {"value": 2.5}]


def test_keys_and_values_round_trip_through_kafkas_sasl_ssl_listener(registry, client, kafka_sasl_ssl):
    """The whole path as deployed: the registry over TLS with basic credentials, Kafka over
    TLS (verified against the stack CA) with SCRAM-SHA-512, topic administration included."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka_sasl_ssl)
    topic = f"interop-sasl-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], operation_timeout=30)[topic].result(timeout=30)
    try:
        sent = list(orders(6))
        produce(topic, sent, AvroSerializer(client, json.dumps(KEY_SCHEMA)), AvroSerializer(client, json.dumps(VALUE_SCHEMA)), kafka_sasl_ssl)
        key_id = client.get_latest_version(f"{topic}-key").schema_id
        value_id = client.get_latest_version(f"{topic}-value").schema_id

        reader = SchemaRegistryClient(registry.client_config())
        key_deserializer = AvroDeserializer(reader)
        value_deserializer = AvroDeserializer(reader)
        received = consume(topic, len(sent), kafka_sasl_ssl)
        for message, (key, value) in zip(received, sent):
            assert framed_id(message.key()) == key_id
            assert framed_id(message.value()) == value_id
            assert key_deserializer(message.key(), SerializationContext(topic, MessageField.KEY)) == key
            assert value_deserializer(message.value(), SerializationContext(topic, MessageField.VALUE)) == value
    finally:
        admin.delete_topics([topic], operation_timeout=30)
