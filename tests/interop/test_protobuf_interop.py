"""Protobuf between confluent-kafka's serde and the messaging service, through our registry and
the stack's real Kafka:

- records written by `confluent_kafka.Producer` with `ProtobufSerializer` (auto-registering the
  file and, as a reference, the file it imports) are read through our gRPC Consume stream as
  Protobuf's canonical JSON, which parses back to the very messages;
- records produced through our gRPC Produce (JSON and binary, by subject version and message
  name) are read by a plain `confluent_kafka.Consumer` with `ProtobufDeserializer`, which fetches
  the writer schema and its reference from our registry in the `serialized` format.

The records cover nested messages, a oneof (both branches), a map, an enum, a repeated field,
well-known types (Timestamp, StringValue), a message imported from a referenced file, a record
message that is not the first of its file (message indexes [1]), a nested message as the record
([1, 0]) and the file's first message (the single-0 shortcut).
"""

import importlib
import json
import sys
import types
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import json_format

from conftest import BOOTSTRAP
from test_messaging_interop import ConsumeStream, consume_with_confluent, framed_id

PROTOS = Path(__file__).parent / "protos"
COMMON = "shop/common.proto"
ORDER = "shop/order.proto"


@pytest.fixture(scope="session")
def interop_pb(tmp_path_factory):
    """The generated modules of tests/interop/protos/shop (order_pb2 and common_pb2)."""
    from grpc_tools import protoc
    import importlib.resources as resources

    well_known = str(resources.files("grpc_tools") / "_proto")
    out = tmp_path_factory.mktemp("interop_protos")
    status = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTOS}", f"-I{well_known}", f"--python_out={out}", str(PROTOS / COMMON), str(PROTOS / ORDER)]
    )
    if status != 0:
        pytest.fail(f"grpc_tools.protoc failed ({status}) on {PROTOS}")
    (out / "shop" / "__init__.py").touch()
    sys.path.insert(0, str(out))
    try:
        order = importlib.import_module("shop.order_pb2")
        common = importlib.import_module("shop.common_pb2")
    finally:
        sys.path.remove(str(out))
    return types.SimpleNamespace(order=order, common=common)


def orders(pb) -> list:
    order_pb2, common_pb2 = pb.order, pb.common
    first = order_pb2.Order(
        id="o-1",
        lines=[
            order_pb2.Order.Line(sku="apple", count=3, price=common_pb2.Money(currency_code="EUR", units=1, nanos=500_000_000)),
            order_pb2.Order.Line(sku="pear", count=1),
        ],
        quantities={"apple": 3, "pear": 1},
        status=order_pb2.STATUS_PLACED,
        card="4111-1111",
        weight=1.25,
        signature=b"\x00\xffsig",
    )
    first.placed_at.FromJsonString("2024-01-02T03:04:05.678Z")
    first.note.value = "ring twice"
    second = order_pb2.Order(
        id="o-2",
        status=order_pb2.STATUS_SHIPPED,
        cash=common_pb2.Money(currency_code="USD", units=-12, nanos=-340_000_000),
        quantities={"x": -1},
    )
    second.placed_at.FromJsonString("1969-12-31T23:59:59Z")
    third = order_pb2.Order(id="o-3")  # every other field at its default
    return [first, second, third]


def test_records_written_by_confluent_protobuf_serializer_are_consumed_through_messaging(
    registry, messaging, messaging_pb, interop_pb, topic
):
    pb2 = messaging_pb.pb2
    client = SchemaRegistryClient(registry.client_config())
    value_serializer = ProtobufSerializer(interop_pb.order.Order, client, {"use.deprecated.format": False})
    key_serializer = ProtobufSerializer(interop_pb.order.Order.Line, client, {"use.deprecated.format": False})
    records = orders(interop_pb)
    keys = [interop_pb.order.Order.Line(sku=f"k{n}", count=n) for n in range(len(records))]
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    errors = []
    for key, value in zip(keys, records):
        producer.produce(
            topic,
            key=key_serializer(key, SerializationContext(topic, MessageField.KEY)),
            value=value_serializer(value, SerializationContext(topic, MessageField.VALUE)),
            on_delivery=lambda error, _message: errors.append(error) if error else None,
        )
    assert producer.flush(30) == 0
    assert errors == []

    # The serializer registered the imported file under its own subject, as a reference.
    value_version = client.get_latest_version(f"{topic}-value")
    assert value_version.schema.schema_type == "PROTOBUF"
    assert [(r.name, r.subject) for r in value_version.schema.references] == [(COMMON, COMMON)]
    assert client.get_latest_version(COMMON).schema.schema_type == "PROTOBUF"

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
        consumed = stream.records(len(records))
    finally:
        stream.close()
    for record, key, value in zip(consumed, keys, records):
        assert not record.value.HasField("error"), record.value.error
        assert record.value.schema_id == value_version.schema_id
        assert record.value.WhichOneof("data") == "json"
        assert json_format.Parse(record.value.json, interop_pb.order.Order()) == value
        # Canonical JSON: the same dict Python's own printer makes.
        assert json.loads(record.value.json) == json_format.MessageToDict(value)
        assert not record.key.HasField("error"), record.key.error
        assert json_format.Parse(record.key.json, interop_pb.order.Order.Line()) == key


def test_records_produced_through_messaging_are_read_by_confluent_protobuf_deserializer(
    registry, messaging, messaging_pb, interop_pb, topic
):
    pb2 = messaging_pb.pb2
    client = SchemaRegistryClient(registry.client_config())
    # The files registered as .proto text, the import as a reference (what Java's serializer and
    # most tools do).
    client.register_schema(COMMON, Schema((PROTOS / COMMON).read_text(), "PROTOBUF"))
    common_version = client.get_latest_version(COMMON).version
    value_id = client.register_schema(
        f"{topic}-value",
        Schema((PROTOS / ORDER).read_text(), "PROTOBUF", [SchemaReference(COMMON, COMMON, common_version)]),
    )

    records = orders(interop_pb)
    selector = pb2.SubjectVersionSelector(subject=f"{topic}-value")
    requests = []
    for n, order in enumerate(records):
        payload = pb2.ProtobufPayload(subject_version=selector, message_name="tributary.interop.Order")
        if n == 1:
            payload.binary = order.SerializeToString()
        else:
            payload.json = json_format.MessageToJson(order)
        requests.append(pb2.ProducerRecord(topic=topic, value=pb2.Payload(protobuf=payload)))
    # The file's first message, named by default.
    header = interop_pb.order.Header(source="gateway", sequence=7)
    requests.append(
        pb2.ProducerRecord(
            topic=topic,
            value=pb2.Payload(protobuf=pb2.ProtobufPayload(subject_version=selector, json=json_format.MessageToJson(header))),
        )
    )
    results = messaging.stub.Produce(pb2.ProduceRequest(records=requests), timeout=60).results
    for result in results:
        assert result.WhichOneof("result") == "metadata", f"not produced: {result.error}"
        assert result.metadata.value_schema_id == value_id

    messages = consume_with_confluent(topic, len(requests))
    # A client of its own, as a consuming service has: the registering client caches the text
    # it registered under the id and would hand that to the deserializer, which asks for the
    # serialized (base64 descriptor) form.
    reader = SchemaRegistryClient(registry.client_config())
    order_deserializer = ProtobufDeserializer(interop_pb.order.Order, {"use.deprecated.format": False}, reader)
    header_deserializer = ProtobufDeserializer(interop_pb.order.Header, {"use.deprecated.format": False}, reader)
    context = SerializationContext(topic, MessageField.VALUE)
    for message, order in zip(messages, records):
        assert framed_id(message.value()) == value_id
        assert message.value()[5:7] == b"\x02\x02", "message indexes [1]"
        assert order_deserializer(message.value(), context) == order
    last = messages[-1].value()
    assert last[5] == 0, "the first message's single-0 shortcut"
    assert header_deserializer(last, context) == header

    # A record that does not match its message fails alone, naming the field.
    bad = pb2.ProducerRecord(
        topic=topic,
        value=pb2.Payload(
            protobuf=pb2.ProtobufPayload(subject_version=selector, message_name="tributary.interop.Order", json='{"lines": [{"count": "many"}]}')
        ),
    )
    good = requests[0]
    results = messaging.stub.Produce(pb2.ProduceRequest(records=[bad, good]), timeout=60).results
    assert results[0].WhichOneof("result") == "error"
    assert "lines[0].count" in results[0].error.message, results[0].error.message
    assert results[1].WhichOneof("result") == "metadata"
