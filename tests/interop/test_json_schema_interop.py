"""JSON Schema between confluent-kafka's serde and the messaging service, through our registry and
the stack's real Kafka:

- records written by `confluent_kafka.Producer` with `JSONSerializer` (auto-registering a JSON
  schema) are read through our gRPC Consume stream as JSON;
- records produced through our gRPC Produce (a `json_schema` payload, validated against its
  schema) are read by a plain `confluent_kafka.Consumer` with `JSONDeserializer`, which fetches
  the writer schema from our registry and validates the record again;
- a record that does not validate fails on its own, naming the keyword and the path.
"""

import json
import uuid

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import BOOTSTRAP
from test_messaging_interop import ConsumeStream, consume_with_confluent, framed_id

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Order",
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "count": {"type": "integer", "minimum": 1}},
                "required": ["sku", "count"],
            },
        },
        "status": {"enum": ["PLACED", "SHIPPED"]},
        "note": {"type": ["string", "null"]},
    },
    "required": ["id", "amount"],
    "additionalProperties": False,
}

ORDERS = [
    {"id": "o-1", "amount": 12.5, "lines": [{"sku": "apple", "count": 3}], "status": "PLACED", "note": None},
    {"id": "o-2", "amount": 0, "lines": [], "status": "SHIPPED", "note": "ring twice ✓"},
    {"id": "o-3", "amount": 1e6},
]


def test_records_written_by_confluent_json_serializer_are_consumed_through_messaging(registry, messaging, messaging_pb, topic):
    pb2 = messaging_pb.pb2
    client = SchemaRegistryClient(registry.client_config())
    serializer = JSONSerializer(json.dumps(SCHEMA), client, conf={"auto.register.schemas": True})
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    errors = []
    for order in ORDERS:
        producer.produce(
            topic,
            value=serializer(order, SerializationContext(topic, MessageField.VALUE)),
            on_delivery=lambda error, _message: errors.append(error) if error else None,
        )
    assert producer.flush(30) == 0
    assert errors == []
    registered = client.get_latest_version(f"{topic}-value")
    assert registered.schema.schema_type == "JSON"

    stream = ConsumeStream(
        messaging,
        pb2,
        pb2.Subscription(
            group_id=f"interop-{uuid.uuid4().hex}",
            partitions=[pb2.TopicPartition(topic=topic, partition=0)],
            start=pb2.START_POSITION_EARLIEST,
        ),
    )
    try:
        consumed = stream.records(len(ORDERS))
    finally:
        stream.close()
    for record, order in zip(consumed, ORDERS):
        assert not record.value.HasField("error"), record.value.error
        assert record.value.schema_id == registered.schema_id
        assert record.value.WhichOneof("data") == "json"
        assert json.loads(record.value.json) == order


def test_records_produced_through_messaging_are_read_by_confluent_json_deserializer(registry, messaging, messaging_pb, topic):
    pb2 = messaging_pb.pb2

    def payload(order, inline=False):
        schema = (
            {"inline": pb2.InlineSchema(schema=json.dumps(SCHEMA), strategy=pb2.SUBJECT_NAME_STRATEGY_TOPIC_NAME)}
            if inline
            else {"subject_version": pb2.SubjectVersionSelector(subject=f"{topic}-value")}
        )
        return pb2.Payload(json_schema=pb2.JsonSchemaPayload(json=json.dumps(order), **schema))

    # The first record registers the schema (inline); the others name the subject's latest.
    requests = [pb2.ProducerRecord(topic=topic, value=payload(ORDERS[0], inline=True))]
    requests += [pb2.ProducerRecord(topic=topic, value=payload(order)) for order in ORDERS[1:]]
    results = messaging.stub.Produce(pb2.ProduceRequest(records=requests), timeout=60).results
    for result in results:
        assert result.WhichOneof("result") == "metadata", f"not produced: {result.error}"
    schema_id = results[0].metadata.value_schema_id

    reader = SchemaRegistryClient(registry.client_config())
    assert reader.get_schema(schema_id).schema_type == "JSON"
    deserializer = JSONDeserializer(None, schema_registry_client=reader)
    context = SerializationContext(topic, MessageField.VALUE)
    messages = consume_with_confluent(topic, len(ORDERS))
    for message, order in zip(messages, ORDERS):
        assert framed_id(message.value()) == schema_id
        assert deserializer(message.value(), context) == order

    # Records that do not validate fail alone, naming the keyword and where.
    bad = [
        ({"id": "x", "amount": -1}, "minimum", "/amount"),
        ({"id": "x", "amount": 1, "lines": [{"sku": "a", "count": 0}]}, "minimum", "/lines/0/count"),
        ({"id": "x", "amount": 1, "extra": True}, "additionalProperties", ""),
        ({"amount": 1}, "required", ""),
    ]
    requests = [pb2.ProducerRecord(topic=topic, value=payload(order)) for order, _, _ in bad]
    requests.append(pb2.ProducerRecord(topic=topic, value=payload(ORDERS[2])))
    results = messaging.stub.Produce(pb2.ProduceRequest(records=requests), timeout=60).results
    for result, (order, keyword, path) in zip(results, bad):
        assert result.WhichOneof("result") == "error", f"{order} was produced"
        assert keyword in result.error.message and path in result.error.message, result.error.message
    assert results[-1].WhichOneof("result") == "metadata"
