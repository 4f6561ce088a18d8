"""confluent-kafka's SchemaRegistryClient against the registry's HTTP API: register, get by id,
versions, lookup, compatibility, config, mode and deletes, with Confluent's errors."""

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryError, ServerConfig
from confluent_kafka.schema_registry.common.schema_registry_client import ConfigCompatibilityLevel

USER_V1 = {"type": "record", "name": "User", "namespace": "com.example", "fields": [{"name": "name", "type": "string"}]}
USER_V2 = {
    "type": "record",
    "name": "User",
    "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int", "default": 0}],
}
USER_BREAKING = {
    "type": "record",
    "name": "User",
    "namespace": "com.example",
    "fields": [{"name": "name", "type": "long"}, {"name": "email", "type": "string"}],
}


def avro(schema: dict, references=None) -> Schema:
    # Pretty-printed on purpose: the registry stores the canonical form.
    return Schema(json.dumps(schema, indent=2), "AVRO", references or [])


def compact(schema: dict) -> str:
    return json.dumps(schema, separators=(",", ":"))


def test_register_get_by_id_versions_and_lookup(client):
    first = client.register_schema("users-value", avro(USER_V1))
    assert first > 0
    assert client.register_schema("users-value", avro(USER_V1)) == first
    second = client.register_schema("users-value", avro(USER_V2))
    assert second != first
    assert client.register_schema("audit-value", avro(USER_V1)) == first

    fetched = client.get_schema(first)
    assert fetched.schema_str == compact(USER_V1)
    assert fetched.schema_type == "AVRO"

    assert client.get_subjects() == ["audit-value", "users-value"]
    assert client.get_subjects(subject_prefix="users") == ["users-value"]
    assert client.get_versions("users-value") == [1, 2]
    version = client.get_version("users-value", 1)
    assert (version.schema_id, version.subject, version.version) == (first, "users-value", 1)
    assert version.schema.schema_str == compact(USER_V1)
    latest = client.get_latest_version("users-value")
    assert (latest.schema_id, latest.version) == (second, 2)

    found = client.lookup_schema("users-value", avro(USER_V1))
    assert (found.schema_id, found.version) == (first, 1)
    with pytest.raises(SchemaRegistryError) as missing:
        client.lookup_schema("users-value", Schema('"string"', "AVRO"))
    assert (missing.value.http_status_code, missing.value.error_code) == (404, 40403)

    assert sorted(client.get_subjects_by_schema_id(first)) == ["audit-value", "users-value"]
    assert sorted((v.subject, v.version) for v in client.get_schema_versions(first)) == [("audit-value", 1), ("users-value", 1)]
    assert client.get_schema_types() == ["AVRO", "PROTOBUF", "JSON"]

    with pytest.raises(SchemaRegistryError) as unknown:
        client.get_schema(98765)
    assert (unknown.value.http_status_code, unknown.value.error_code) == (404, 40403)


def test_references(client):
    address = {"type": "record", "name": "Address", "namespace": "com.example", "fields": [{"name": "city", "type": "string"}]}
    person = {"type": "record", "name": "Person", "namespace": "com.example", "fields": [{"name": "home", "type": "com.example.Address"}]}
    address_id = client.register_schema("address", avro(address))
    person_id = client.register_schema("person", avro(person, [SchemaReference("com.example.Address", "address", 1)]))
    fetched = client.get_schema(person_id)
    assert [(r.name, r.subject, r.version) for r in fetched.references] == [("com.example.Address", "address", 1)]
    assert client.get_referenced_by("address", 1) == [person_id]
    assert address_id != person_id


def test_compatibility_and_config(client):
    client.register_schema("c-value", avro(USER_V1))
    assert client.get_compatibility() == "BACKWARD"
    assert client.test_compatibility("c-value", avro(USER_V2)) is True
    assert client.test_compatibility("c-value", avro(USER_BREAKING)) is False
    assert client.test_compatibility_all_versions("c-value", avro(USER_BREAKING), verbose=True) is False
    assert client.test_compatibility("brand-new", avro(USER_BREAKING)) is True

    with pytest.raises(SchemaRegistryError) as conflict:
        client.register_schema("c-value", avro(USER_BREAKING))
    assert (conflict.value.http_status_code, conflict.value.error_code) == (409, 409)
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in conflict.value.error_message
    assert "TYPE_MISMATCH" in conflict.value.error_message

    assert client.set_compatibility("c-value", "none") == {"compatibility": "NONE"}
    assert client.get_compatibility("c-value") == "NONE"
    assert client.register_schema("c-value", avro(USER_BREAKING)) > 0

    client.set_compatibility(level="FULL_TRANSITIVE")
    assert client.get_compatibility() == "FULL_TRANSITIVE"
    assert client.get_config().compatibility_level.value == "FULL_TRANSITIVE"
    client.set_config("c-value", ServerConfig(compatibility=ConfigCompatibilityLevel.FORWARD))
    assert client.get_config("c-value").compatibility_level.value == "FORWARD"
    client.delete_config("c-value")
    with pytest.raises(SchemaRegistryError) as unset:
        client.get_compatibility("c-value")
    assert (unset.value.http_status_code, unset.value.error_code) == (404, 40408)
    with pytest.raises(SchemaRegistryError) as invalid:
        client.set_compatibility(level="SIDEWAYS")
    assert (invalid.value.http_status_code, invalid.value.error_code) == (422, 42203)


def test_modes(client):
    assert client.get_global_mode() == "READWRITE"
    assert client.update_mode("m-value", "READONLY") == "READONLY"
    assert client.get_mode("m-value") == "READONLY"
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("m-value", avro(USER_V1))
    assert refused.value.error_code == 42205
    assert client.delete_mode("m-value") == "READONLY"
    client.register_schema("m-value", avro(USER_V1))
    with pytest.raises(SchemaRegistryError) as needs_force:
        client.update_global_mode("IMPORT")
    assert needs_force.value.error_code == 42205
    assert client.update_global_mode("IMPORT", force=True) == "IMPORT"
    assert client.update_global_mode("READWRITE") == "READWRITE"


def test_deletes(client):
    client.set_compatibility("d-value", "NONE")
    ids = [client.register_schema("d-value", Schema(f'"{t}"', "AVRO")) for t in ("string", "int", "long")]
    assert len(set(ids)) == 3
    assert client.delete_version("d-value", 2) == 2
    assert client.get_versions("d-value") == [1, 3]
    assert client.delete_version("d-value", 2, permanent=True) == 2
    assert client.delete_subject("d-value") == [1, 3]
    with pytest.raises(SchemaRegistryError) as gone:
        client.get_versions("d-value")
    assert (gone.value.http_status_code, gone.value.error_code) == (404, 40401)
    assert client.get_subjects(deleted=True) == ["d-value"]
    assert client.delete_subject("d-value", permanent=True) == [1, 3]
    assert client.get_subjects(deleted=True) == []
    # Ids outlive their subject versions.
    assert client.get_schema(ids[0]).schema_str == '"string"'
