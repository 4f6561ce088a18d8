#!/usr/bin/env python3
"""Writes the seed corpora of the tributary-avro fuzz targets (seeds/<target>/) from the schemas
and samples of common/bodies.rs, plus a few hand-picked inputs. scripts/fuzz passes
seeds/<target> to libFuzzer beside the target's working corpus. Run from crates/avro/fuzz."""
import json
import os
import re
import shutil

src = open("common/bodies.rs").read()
body = src[src.index("pub const SCHEMAS"):src.index("/// The parsed [`SCHEMAS`]")]
lit = r'(?:r#"(.*?)"#|"((?:[^"\\]|\\.)*)")'
schemas = [
    (t[0] or t[1], t[3] or t[4])
    for t in re.findall(r"\(\s*" + lit + r",\s*(true|false),\s*" + lit + r",?\s*\)", body, re.S)
]
readers = re.findall(r'r#"(.*?)"#', src[src.index("pub const READERS"):src.index("pub fn readers")], re.S)
assert len(schemas) == 9 and len(readers) == 6, (len(schemas), len(readers))


def compact(text):
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


for target in os.listdir("seeds"):
    if os.path.isdir(f"seeds/{target}"):
        shutil.rmtree(f"seeds/{target}")


def put(target, name, data):
    os.makedirs(f"seeds/{target}", exist_ok=True)
    with open(f"seeds/{target}/{name}", "wb") as f:
        f.write(data)


writers = [compact(s) for s, _ in schemas]
evolved = [compact(r) for r in readers]
extra = [
    '{"type":"record","name":"a.b.R","doc":"d","aliases":["x.Old"],"fields":[{"name":"f","type":{"type":"enum","name":"E","symbols":["X","Y"],"default":"Y"},"default":"X","order":"descending","aliases":["g"]},{"name":"u","type":["null",{"type":"fixed","name":"F","size":4,"logicalType":"decimal","precision":9,"scale":2}],"default":null,"custom":{"k":[1,2]}}]}',
    '{"type":"error","name":"Err","fields":[{"name":"m","type":{"type":"array","items":{"type":"map","values":"Err"}}}]}',
]
for i, text in enumerate(writers + evolved + extra):
    put("schema_parse", f"schema{i:02}", b"\0" + text.encode())
    put("schema_parse", f"schema{i:02}-nodefaults", b"\1" + text.encode())
address = '{"type":"record","name":"com.acme.Address","fields":[{"name":"zip","type":"string"}]}'
order = '{"type":"record","name":"com.acme.Order","fields":[{"name":"to","type":"com.acme.Address"},{"name":"alt","type":["null","com.acme.Address"],"default":null}]}'
put("schema_parse", "references", b"\0" + address.encode() + b"\0" + order.encode())
# Found by fuzzing (docs/fuzzing.md, "Findings"): a null-namespace enum inside a namespaced
# record, whose Parsing Canonical Form reads back in the record's namespace.
put("schema_parse", "crash-pcf-null-namespace", b"\0" + '{"type":"record","name":"a.b.R","fields":[{"name":"f","type":{"type":"enum","name":".E","symbols":["X","Y"]}},{"name":"u","type":["null",{"type":"fixed","name":"F","size":1}]}]}'.encode())

pairs = [(writers[0], evolved[0]), (writers[4], evolved[3]), (writers[5], evolved[4]),
         (writers[8], evolved[5]), (writers[3], writers[1]), (extra[0], extra[0])]
for i, (a, b) in enumerate(pairs):
    for flags in (2, 10, 0x31):
        put("compat", f"pair{i}-{flags}", bytes([flags]) + a.encode() + b"\0" + b.encode())

for i, (_, sample) in enumerate(schemas):
    put("json_to_avro", f"sample{i}", bytes([i]) + sample.encode())

# Avro data of the simple schemas: long 1, "foo", bytes 00 ff, union branch 1 "x", a map.
avro = {0: b"\x02", 1: b"\x06foo", 2: b"\x04\x00\xff", 3: b"\x02\x02x",
        8: b"\x04\x02a\x02\x04\x00\x00\x00\x02b\x00\x00"}
for i, data in avro.items():
    put("frame_decode", f"frame{i}", b"\0" + i.to_bytes(4, "big") + data)
    put("avro_to_json", f"data{i}", bytes([i, i]) + data)
put("avro_to_json", "long-as-double", bytes([0, len(schemas)]) + b"\x02")
put("avro_to_json", "long-as-union", bytes([0, len(schemas) + 1]) + b"\x02")
