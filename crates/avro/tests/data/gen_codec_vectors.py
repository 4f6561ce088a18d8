"""Generate codec_vectors.json with fastavro (run once; the output is committed).

Each case: an Avro schema, a datum in Avro's JSON encoding (tagged unions, bytes as
ISO-8859-1 characters), and the Avro binary fastavro writes for it (hex).
Usage: .stack/venv/bin/python crates/avro/tests/data/gen_codec_vectors.py
"""
import io
import json
import os

import fastavro
from fastavro import json_reader, schemaless_writer, parse_schema

CASES = [
    ("null", "null"),
    ("boolean", "true"),
    ("boolean", "false"),
    ("int", "0"),
    ("int", "-1"),
    ("int", "2147483647"),
    ("int", "-2147483648"),
    ("long", "1"),
    ("long", "-64"),
    ("long", "64"),
    ("long", "9223372036854775807"),
    ("long", "-9223372036854775808"),
    ("float", "1.5"),
    ("float", "-0.25"),
    ("double", "3.141592653589793"),
    ("double", "-1e300"),
    ("string", '"foo"'),
    ("string", '""'),
    ("string", '"h\\u00e9llo \\u2603 \\ud83d\\ude00"'),
    ("bytes", '"\\u0000\\u0001\\u00ff abc"'),
    ({"type": "fixed", "name": "F4", "size": 4}, '"\\u0000\\u00ffab"'),
    ({"type": "enum", "name": "Suit", "symbols": ["SPADES", "HEARTS", "DIAMONDS"]}, '"DIAMONDS"'),
    ({"type": "array", "items": "long"}, "[1, -2, 300, 0]"),
    ({"type": "array", "items": "string"}, "[]"),
    ({"type": "map", "values": "int"}, '{"a": 1, "b": -1}'),
    (["null", "string"], "null"),
    (["null", "string"], '{"string": "x"}'),
    (["int", "long", "double"], '{"double": 2.5}'),
    (
        {
            "type": "record",
            "name": "Person",
            "namespace": "com.acme",
            "fields": [
                {"name": "name", "type": "string"},
                {"name": "age", "type": "int"},
                {"name": "email", "type": ["null", "string"], "default": None},
                {"name": "tags", "type": {"type": "array", "items": "string"}},
                {
                    "name": "address",
                    "type": {
                        "type": "record",
                        "name": "Address",
                        "fields": [
                            {"name": "street", "type": "string"},
                            {"name": "zip", "type": "int"},
                        ],
                    },
                },
                {"name": "kind", "type": ["null", "Address", {"type": "map", "values": "boolean"}]},
            ],
        },
        '{"name": "Ann", "age": 42, "email": {"string": "a@x.org"}, "tags": ["a", "b"],'
        ' "address": {"street": "Main", "zip": 12345}, "kind": {"com.acme.Address": {"street": "S", "zip": 1}}}',
    ),
    ({"type": "int", "logicalType": "date"}, "19723"),
    ({"type": "int", "logicalType": "time-millis"}, "45296789"),
    ({"type": "long", "logicalType": "time-micros"}, "45296789012"),
    ({"type": "long", "logicalType": "timestamp-millis"}, "1704067200123"),
    ({"type": "long", "logicalType": "timestamp-micros"}, "1704067200123456"),
    ({"type": "long", "logicalType": "local-timestamp-millis"}, "1704067200123"),
    ({"type": "long", "logicalType": "local-timestamp-micros"}, "-1"),
    ({"type": "string", "logicalType": "uuid"}, '"123e4567-e89b-12d3-a456-426614174000"'),
    ({"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}, '"\\u0004\\u00d2"'),
    (
        {"type": "fixed", "name": "Dec", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 3},
        '"\\u00ff\\u00ff\\u00ff\\u00ff\\u00ff\\u00ff\\u00fb\\u002e"',
    ),
]

# (writer schema, reader schema, datum in Avro JSON encoding for the writer). fastavro writes the
# datum and reads it back with the reader schema; the expected result is stored as plain JSON
# (unions untagged), which is what fastavro's Python value serialises to.
REC_V1 = {
    "type": "record", "name": "User", "namespace": "com.acme",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string"},
        {"name": "gone", "type": {"type": "array", "items": {"type": "map", "values": "string"}}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["ACTIVE", "BANNED", "NEW_STATE"]}},
        {"name": "score", "type": "float"},
        {"name": "opt", "type": ["null", "int"]},
    ],
}
REC_V2 = {
    "type": "record", "name": "User", "namespace": "com.acme",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["ACTIVE", "BANNED", "UNKNOWN"], "default": "UNKNOWN"}},
        {"name": "score", "type": "double"},
        {"name": "opt", "type": ["null", "long", "string"]},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "level", "type": "int", "default": 3},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": ["x"]},
    ],
}
EVOLUTION = [
    (REC_V1, REC_V2, '{"id": 7, "name": "Ann", "gone": [{"k": "v"}, {}], "status": "NEW_STATE", "score": 0.5, "opt": {"int": 4}}'),
    (REC_V1, REC_V2, '{"id": -2147483648, "name": "", "gone": [], "status": "BANNED", "score": -1.25, "opt": null}'),
    ("int", "double", "123"),
    ("long", "float", "3"),
    ("string", "bytes", '"abc"'),
    (["null", "int"], ["null", "long"], '{"int": 5}'),
    ("int", ["null", "string", "long"], "9"),
    ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, "[1, 2, 3]"),
    ({"type": "map", "values": "float"}, {"type": "map", "values": "double"}, '{"a": 1.5}'),
]


def main():
    out = []
    for schema, datum in CASES:
        parsed = parse_schema(schema)
        # fastavro's JSON reader decodes Avro's JSON encoding; logical types come back as Python
        # objects, so it is given the schema without logical types (same binary form).
        plain = json.loads(json.dumps(schema), object_hook=lambda o: {k: v for k, v in o.items() if k != "logicalType"} if "logicalType" in o and o.get("type") in ("int", "long", "string", "bytes") else o)
        rec = next(iter(json_reader(io.StringIO(datum), parse_schema(plain))))
        buf = io.BytesIO()
        schemaless_writer(buf, parse_schema(plain), rec)
        out.append({"schema": schema, "json": datum, "hex": buf.getvalue().hex()})
    evo = []
    for writer, reader, datum in EVOLUTION:
        rec = next(iter(json_reader(io.StringIO(datum), parse_schema(writer))))
        buf = io.BytesIO()
        schemaless_writer(buf, parse_schema(writer), rec)
        buf.seek(0)
        got = fastavro.schemaless_reader(buf, parse_schema(writer), parse_schema(reader))
        if isinstance(got, bytes):
            got = got.decode("latin-1")
        evo.append({"writer": writer, "reader": reader, "json": datum, "hex": buf.getvalue().hex(), "expected_plain": got})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "codec_vectors.json")
    with open(path, "w") as f:
        json.dump({"generator": "fastavro " + fastavro.__version__, "cases": out, "evolution": evo}, f, indent=1)
        f.write("\n")
    print(len(out), "cases written to", path)


if __name__ == "__main__":
    main()
