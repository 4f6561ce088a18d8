#!/usr/bin/env python3
"""Writes the seed corpora of the services' fuzz targets (seeds/<target>/): a few valid requests
of each route or message, and a few refused ones. The protobuf messages are encoded by hand (the
field numbers of proto/tributary/*/v1/*.proto). scripts/fuzz passes seeds/<target> to libFuzzer
beside the target's working corpus. Run from services/fuzz."""
import json
import os
import shutil

for target in ("registry_http_bodies", "registry_grpc_requests", "messaging_grpc_requests"):
    shutil.rmtree(f"seeds/{target}", ignore_errors=True)
    os.makedirs(f"seeds/{target}")


def put(target, name, data):
    with open(f"seeds/{target}/{name}", "wb") as f:
        f.write(data)


# ----- protobuf, by hand ---------------------------------------------------------------------


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


ORDER_V1 = {
    "type": "record", "name": "Order", "namespace": "fuzz",
    "fields": [{"name": "id", "type": "long"},
               {"name": "note", "type": ["null", "string"], "default": None}],
}
ORDER_V2 = dict(ORDER_V1, fields=ORDER_V1["fields"] + [
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}, "default": "A"}])
ORDER_BAD = dict(ORDER_V1, fields=[{"name": "id", "type": "string"}])
PERSON = {"type": "record", "name": "Person", "fields": [
    {"name": "name", "type": "string"}, {"name": "age", "type": ["null", "int"], "default": None},
    {"name": "email", "type": {"type": "string", "logicalType": "uuid"}}]}
SCHEMAS = [ORDER_V1, ORDER_V2, ORDER_BAD, PERSON, "string",
           {"type": "array", "items": {"type": "map", "values": "double"}}]

# Protobuf schemas (.proto text): proto3 with WKTs, maps, oneofs, nesting; proto2 with groups,
# defaults, extensions and custom options.
PROTOS = [
    'syntax = "proto3";\npackage fuzz;\nimport "google/protobuf/timestamp.proto";\n'
    'message Order {\n  int64 id = 1;\n  string note = 2;\n  enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; }\n'
    '  Kind kind = 3;\n  map<string, string> tags = 4;\n  message Line { string sku = 1; uint32 count = 2; }\n'
    '  repeated Line lines = 5;\n  oneof pay { string card = 6; bytes token = 7; }\n'
    '  google.protobuf.Timestamp at = 8;\n  optional sint64 delta = 9;\n}\n',
    'syntax = "proto2";\npackage fuzz.v2;\nimport "google/protobuf/descriptor.proto";\n'
    'extend google.protobuf.FieldOptions { optional string tag = 50001; }\n'
    'message Legacy {\n  required int32 id = 1 [default = -7, (tag) = "x"];\n'
    '  optional string name = 2 [default = "a\\"b"];\n  repeated group Item = 3 { optional double w = 1 [default = inf]; }\n'
    '  extensions 100 to 199;\n  reserved 10 to 12, 15;\n  reserved "old";\n}\n'
    'service S { rpc Get(Legacy) returns (stream Legacy); }\n',
]

# JSON schemas: draft-07 with local $refs, a 2020-12 one, and a refused remote $ref.
JSON_SCHEMAS = [
    {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
     "properties": {"id": {"type": "integer", "minimum": 1}, "note": {"type": ["string", "null"], "maxLength": 100},
                    "lines": {"type": "array", "items": {"$ref": "#/definitions/line"}}},
     "required": ["id"], "additionalProperties": False,
     "definitions": {"line": {"type": "object", "properties": {"sku": {"type": "string", "pattern": "^[a-z]+$"}}}}},
    {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array",
     "prefixItems": [{"type": "string"}, {"enum": [1, 2]}], "items": False,
     "$defs": {"n": {"oneOf": [{"type": "null"}, {"$ref": "#"}]}}},
    {"$ref": "https://example.com/remote.json"},
]

# ----- registry_http_bodies: [route, setting] + body -----------------------------------------
# route % 6: 0 register, 1 lookup, 2 compatibility (level's versions), 3 compatibility (one
# version), 4 PUT config, 5 PUT mode; route / 6: bit 0 normalize, bit 1 verbose, bits 2-3 the
# version, bit 7 another subject. setting: % 3 the mode, / 3 % 7 the level, / 21 the Content-Type.
t = "registry_http_bodies"
for i, schema in enumerate(SCHEMAS):
    text = json.dumps(schema)
    put(t, f"register-{i}", bytes([0, 0]) + json.dumps({"schema": text}).encode())
    put(t, f"register-normalize-{i}", bytes([6, 3 * 4]) + json.dumps({"schema": text, "schemaType": "AVRO"}).encode())
    put(t, f"lookup-{i}", bytes([1, 0]) + json.dumps({"schema": text}).encode())
    put(t, f"compat-{i}", bytes([2 + 6 * 2, 3 * 1]) + json.dumps({"schema": text}).encode())
    put(t, f"compat-version-{i}", bytes([3 + 6 * 6, 3 * 5]) + json.dumps({"schema": text}).encode())
put(t, "register-import", bytes([0, 2]) + json.dumps({"schema": json.dumps(ORDER_V2), "id": 7, "version": 3}).encode())
put(t, "register-reference", bytes([0, 0]) + json.dumps({
    "schema": json.dumps({"type": "record", "name": "Wrap", "fields": [{"name": "o", "type": "fuzz.Order"}]}),
    "references": [{"name": "fuzz.Order", "subject": "fuzz-value", "version": 1}]}).encode())
put(t, "register-protobuf", bytes([0, 0]) + json.dumps({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}).encode())
for i, schema in enumerate(JSON_SCHEMAS):
    body = json.dumps({"schema": json.dumps(schema), "schemaType": "JSON"}).encode()
    put(t, f"register-json-{i}", bytes([0, 0]) + body)
    put(t, f"register-json-normalize-{i}", bytes([6, 3 * 4]) + body)
    put(t, f"compat-json-{i}", bytes([2 + 6 * 2, 3 * 1]) + body)
for i, text in enumerate(PROTOS):
    put(t, f"register-protobuf-{i}", bytes([0, 0]) + json.dumps({"schema": text, "schemaType": "PROTOBUF"}).encode())
    put(t, f"register-protobuf-normalize-{i}", bytes([6, 3 * 4]) + json.dumps({"schema": text, "schemaType": "PROTOBUF"}).encode())
    put(t, f"compat-protobuf-{i}", bytes([2 + 6 * 2, 3 * 1]) + json.dumps({"schema": text, "schemaType": "PROTOBUF"}).encode())
put(t, "config", bytes([4, 0]) + b'{"compatibility":"FULL_TRANSITIVE"}')
put(t, "config-bad", bytes([4, 0]) + b'{"compatibility":"SIDEWAYS"}')
put(t, "mode", bytes([5, 0]) + b'{"mode":"IMPORT"}')
put(t, "mode-text", bytes([5, 21 * 5]) + b'{"mode":"READONLY"}')

# ----- registry_grpc_requests: [message, setting] + message ----------------------------------
t = "registry_grpc_requests"


def reference(name, subject, version):
    return f_bytes(1, name) + f_bytes(2, subject) + f_varint(3, version)


for i, schema in enumerate(SCHEMAS):
    text = json.dumps(schema)
    put(t, f"register-{i}", bytes([0, 0]) + f_bytes(1, "fuzz-value") + f_bytes(2, text))
    put(t, f"lookup-{i}", bytes([1, 0]) + f_bytes(1, "fuzz-value") + f_bytes(2, text) + f_varint(5, 1))
    put(t, f"compat-{i}", bytes([10, 3 * 4]) + f_bytes(1, "fuzz-value") + f_bytes(2, text) + f_varint(6, i % 2))
put(t, "register-import", bytes([0, 2]) + f_bytes(1, "fuzz-value") + f_bytes(2, json.dumps(ORDER_V2))
    + f_varint(6, 42) + f_varint(7, 5))
put(t, "register-reference", bytes([0, 0]) + f_bytes(1, "other") + f_bytes(2, json.dumps(
    {"type": "record", "name": "Wrap", "fields": [{"name": "o", "type": "fuzz.Order"}]}))
    + f_bytes(4, reference("fuzz.Order", "fuzz-value", -1)))
for i, text in enumerate(PROTOS):
    put(t, f"register-protobuf-{i}", bytes([0, 0]) + f_bytes(1, "proto-value") + f_bytes(2, text) + f_bytes(3, "PROTOBUF"))
put(t, "compat-version", bytes([10, 3]) + f_bytes(1, "fuzz-value") + f_bytes(2, json.dumps(ORDER_BAD)) + f_varint(5, 2))
put(t, "get-schema", bytes([2, 0]) + f_varint(1, 1))
put(t, "usages", bytes([3, 0]) + f_varint(1, 1) + f_varint(2, 1))
put(t, "subject-version", bytes([4, 0]) + f_bytes(1, "fuzz-value") + f_varint(2, -1))
put(t, "list-subjects", bytes([5, 0]) + f_bytes(1, "fu") + f_varint(4, 10) + f_bytes(5, "66757a7a"))
put(t, "list-versions", bytes([6, 0]) + f_bytes(1, "fuzz-value") + f_varint(2, 1))
put(t, "referenced-by", bytes([7, 0]) + f_bytes(1, "fuzz-value") + f_varint(2, 1))
put(t, "delete-subject", bytes([8, 0]) + f_bytes(1, "fuzz-value") + f_varint(2, 1))
put(t, "delete-version", bytes([9, 0]) + f_bytes(1, "fuzz-value") + f_varint(2, 3))
put(t, "get-level", bytes([11, 0]) + f_varint(2, 1))
put(t, "set-level", bytes([12, 0]) + f_bytes(1, "fuzz-value") + f_varint(2, 6))
put(t, "delete-level", bytes([13, 0]) + f_bytes(1, "fuzz-value"))
put(t, "get-mode", bytes([14, 0]) + f_bytes(1, "fuzz-value"))
put(t, "set-mode", bytes([15, 0]) + f_varint(2, 3) + f_varint(3, 1))
put(t, "delete-mode", bytes([16, 0]) + f_bytes(1, "fuzz-value"))

# ----- messaging_grpc_requests: [message] + message --------------------------------------------
# 0 Produce, 1 ProduceStream, 2 Consume, 3 CreateTopic, 4 DescribeTopic, 5 DeleteTopic,
# 6 GetWatermarks, 7 DescribeConsumerGroup, 8 ListTopics.
t = "messaging_grpc_requests"


def avro(json_text, schema_id=None, subject=None, version=0, inline=None, strategy=0):
    out = f_bytes(1, json_text)
    if schema_id is not None:
        out += f_varint(2, schema_id)
    if subject is not None:
        out += f_bytes(3, f_bytes(1, subject) + f_varint(2, version) + f_varint(3, strategy))
    if inline is not None:
        out += f_bytes(4, f_bytes(1, inline) + f_varint(2, strategy))
    return f_bytes(1, out)  # Payload.avro


def record(topic, key=None, value=None, headers=(), partition=None, seconds=None):
    out = f_bytes(1, topic)
    if key is not None:
        out += f_bytes(2, key)
    if value is not None:
        out += f_bytes(3, value)
    for k, v in headers:
        out += f_bytes(4, f_bytes(1, k) + f_bytes(2, v))
    if partition is not None:
        out += f_varint(5, partition)
    if seconds is not None:
        out += f_bytes(6, f_varint(1, seconds) + f_varint(2, 500_000_000))
    return out


records = [
    record("orders", key=f_bytes(4, "k1"), value=avro('{"id": 1, "note": {"string": "hi"}, "kind": "B"}', schema_id=2),
           headers=[("h", b"v")], partition=1, seconds=1_700_000_000),
    record("orders", value=avro('"text"', schema_id=1)),
    record("orders", value=avro('{"id": 2, "note": null, "kind": "A"}', subject="", version=2)),
    record("readings", value=avro('{"at": 1, "values": [1.5, -0.0], "tags": {"a": "b"}, "raw": "abcd", "amount": "\\u0001\\u0002"}', schema_id=3)),
    record("nodes", value=avro('{"Node": {"next": {"Node": {"next": null}}}}', schema_id=4)),
    record("people", value=avro('{"name": "Ann", "age": {"int": 3}, "email": "123e4567-e89b-12d3-a456-426614174000"}', inline=json.dumps(PERSON), strategy=2)),
    record("raw", key=f_bytes(2, b"\x00\x01"), value=f_bytes(3, '{"a": [1, 2]}')),
    record("raw", value=f_bytes(3, '{"a": ')),
]
def protobuf(data=None, binary=None, schema_id=None, subject=None, inline=None, strategy=0, message=""):
    out = b""
    if data is not None:
        out += f_bytes(1, data)
    if binary is not None:
        out += f_bytes(5, binary)
    if schema_id is not None:
        out += f_varint(2, schema_id)
    if subject is not None:
        out += f_bytes(3, f_bytes(1, subject) + f_varint(3, strategy))
    if inline is not None:
        out += f_bytes(4, f_bytes(1, inline) + f_varint(2, strategy))
    if message:
        out += f_bytes(6, message)
    return f_bytes(5, out)  # Payload.protobuf


def json_schema(data, schema_id=None, subject=None, inline=None, strategy=0):
    out = f_bytes(1, data)
    if schema_id is not None:
        out += f_varint(2, schema_id)
    if subject is not None:
        out += f_bytes(3, f_bytes(1, subject) + f_varint(3, strategy))
    if inline is not None:
        out += f_bytes(4, f_bytes(1, inline) + f_varint(2, strategy))
    return f_bytes(6, out)  # Payload.json_schema


records += [
    record("json", value=json_schema('{"id": 3, "note": null, "lines": [{"sku": "ab"}]}', schema_id=5)),
    record("json", value=json_schema('{"id": 0, "extra": true}', subject="")),
    record("json", key=json_schema('["a", 2]', inline=json.dumps(JSON_SCHEMAS[1])),
           value=json_schema('{"id": 1}', inline=json.dumps(JSON_SCHEMAS[0]), strategy=2)),
    record("proto", value=protobuf('{"id": "7", "note": "n", "kind": "KIND_A", "tags": {"a": "b"}, "lines": [{"sku": "s", "count": 2}], "card": "c", "at": "2024-01-02T03:04:05Z", "delta": "-3"}', schema_id=9, message="fuzz.Order")),
    record("proto", value=protobuf('{"sku": "x"}', subject="", message="fuzz.Order.Line")),
    record("proto", value=protobuf(binary=b"\x08\x07\x12\x01n", schema_id=9)),
    record("proto", key=protobuf('{"id": 1}', inline=PROTOS[0], strategy=2, message="fuzz.Order"),
           value=protobuf('{"id": 2, "token": "AAE="}', inline=PROTOS[0], message="fuzz.Order")),
]
for i, r in enumerate(records):
    put(t, f"produce-{i}", bytes([0]) + f_bytes(1, r))
    put(t, f"produce-stream-{i}", bytes([1]) + f_bytes(1, r))
put(t, "produce-batch", bytes([0]) + b"".join(f_bytes(1, r) for r in records))


def subscription(group, topics=(), partitions=(), start=0, offset=0, reader="", batch=0, value_format=0):
    out = f_bytes(1, group)
    for topic in topics:
        out += f_bytes(2, topic)
    for topic, partition in partitions:
        out += f_bytes(3, f_bytes(1, topic) + f_varint(2, partition))
    out += f_varint(4, start) + f_varint(5, offset)
    if start == 5:
        out += f_bytes(6, f_varint(1, 1_700_000_000))
    out += f_varint(7, value_format)
    if reader:
        out += f_bytes(9, reader)
    out += f_varint(12, batch) + f_varint(14, 5)
    return out


put(t, "consume-topics", bytes([2]) + f_bytes(1, subscription("g", topics=["orders"], batch=100)))
put(t, "consume-partitions", bytes([2]) + f_bytes(1, subscription("g", partitions=[("orders", 0), ("orders", 2)], start=5, offset=10)))
put(t, "consume-timestamp", bytes([2]) + f_bytes(1, subscription("g", partitions=[("orders", 1)], start=5)))
put(t, "consume-reader", bytes([2]) + f_bytes(1, subscription("g", topics=["orders"], reader=json.dumps(ORDER_V1), value_format=2)))
put(t, "ack", bytes([2]) + f_bytes(2, f_bytes(1, "t") + f_varint(2, 0) + f_varint(3, 0)))
put(t, "acks", bytes([2]) + f_bytes(4, f_bytes(1, f_bytes(1, "t") + f_varint(3, 1))
                                    + f_bytes(1, f_bytes(1, "t") + f_varint(3, 0))
                                    + f_bytes(2, f_bytes(1, "t") + f_varint(2, 1) + f_varint(3, 105))))
put(t, "seek", bytes([2]) + f_bytes(3, f_bytes(1, "t") + f_varint(2, 1) + f_varint(3, 104)))
put(t, "create-topic", bytes([3]) + f_bytes(1, "orders") + f_varint(2, 3) + f_varint(3, 1))
put(t, "describe-topic", bytes([4]) + f_bytes(1, "orders"))
put(t, "delete-topic", bytes([5]) + f_bytes(1, "orders"))
put(t, "watermarks", bytes([6]) + f_bytes(1, "orders"))
put(t, "describe-group", bytes([7]) + f_bytes(1, "g"))
put(t, "list-topics", bytes([8]) + f_varint(1, 1))
