"""The services' perimeter from a Confluent client's (and a Python gRPC client's) point of view:
the registry's HTTP API over TLS refuses a SchemaRegistryClient without credentials or with
wrong ones with Confluent's 401/40101, a client that does not trust the CA fails in the TLS
handshake (never falling back to anything), and a client certificate or a bearer JWT stands in
for a password. The messaging service's gRPC API answers the same way, with UNAUTHENTICATED."""

import json
import ssl

import grpc
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import Secret, basic_authorization, https_request

USER = {"type": "record", "name": "User", "namespace": "com.example", "fields": [{"name": "name", "type": "string"}]}
SCHEMA = Schema(json.dumps(USER), "AVRO")
# A TLS failure is not retried: fail on the first attempt.
NO_RETRIES = {"max.retries": 0}


def causes(error: BaseException):
    """`error` and the exceptions it was raised from, outermost first."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def ssl_error_of(error: BaseException) -> ssl.SSLError:
    found = [cause for cause in causes(error) if isinstance(cause, ssl.SSLError)]
    assert found, f"expected a TLS error, got {[type(cause).__name__ for cause in causes(error)]}: {error}"
    return found[0]


def refused(call) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as error:
        call()
    return error.value


def assert_unauthenticated(error: SchemaRegistryError, message: str) -> None:
    assert (error.http_status_code, error.error_code) == (401, 40101), str(error)
    assert error.error_message == message


# ---------------------------------------------------------------------------------------------
# The registry's HTTP API


def test_a_client_without_credentials_is_refused_with_401_40101(registry, client):
    schema_id = client.register_schema("users-value", SCHEMA)
    anonymous = SchemaRegistryClient(registry.client_config({"basic.auth.user.info": None}))
    required = "authentication required: send basic credentials or a bearer token, or present a client certificate"
    for call in (
        anonymous.get_subjects,
        lambda: anonymous.get_schema(schema_id),
        lambda: anonymous.get_latest_version("users-value"),
        lambda: anonymous.register_schema("users-value", Schema('"string"', "AVRO")),
        lambda: anonymous.delete_subject("users-value"),
        lambda: anonymous.set_compatibility(level="NONE"),
    ):
        assert_unauthenticated(refused(call), required)
    # Nothing changed.
    assert client.get_subjects() == ["users-value"]
    assert client.get_versions("users-value") == [1]
    assert client.get_compatibility() == "BACKWARD"


def test_the_refusal_names_the_schemes_to_use(registry, security):
    status, headers, body = https_request(f"{registry.url}/subjects", security.ca)
    assert status == 401
    assert headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    challenges = headers.get_all("WWW-Authenticate")
    assert [c.split(",")[0] for c in challenges] == ['Basic realm="tributary"', 'Bearer realm="tributary"'], challenges
    assert body == {
        "error_code": 40101,
        "message": "authentication required: send basic credentials or a bearer token, or present a client certificate",
    }


@pytest.mark.parametrize(
    "user_info",
    [
        pytest.param(("admin", "not-the-password"), id="wrong password"),
        pytest.param(("admin", ""), id="empty password"),
        pytest.param(("mallory", None), id="unknown user with admin's password"),
        pytest.param(("messaging", None), id="another user with admin's password"),
    ],
)
def test_wrong_credentials_are_refused_with_401_40101(registry, client, security, user_info):
    client.register_schema("users-value", SCHEMA)
    user, password = user_info
    password = security.admin_password if password is None else password
    wrong = SchemaRegistryClient(registry.client_config({"basic.auth.user.info": Secret(f"{user}:{password}")}))
    for call in (wrong.get_subjects, lambda: wrong.register_schema("users-value", Schema('"string"', "AVRO"))):
        assert_unauthenticated(refused(call), "invalid user name or password")
    assert client.get_versions("users-value") == [1]


def test_a_serializer_without_credentials_cannot_register(registry, client, topic):
    anonymous = SchemaRegistryClient(registry.client_config({"basic.auth.user.info": None}))
    serializer = AvroSerializer(anonymous, json.dumps(USER))
    error = refused(lambda: serializer({"name": "ann"}, SerializationContext(topic, MessageField.VALUE)))
    assert (error.http_status_code, error.error_code) == (401, 40101)
    assert client.get_subjects() == []


def test_a_client_that_does_not_trust_the_ca_fails_in_the_handshake(registry, client, security, monkeypatch):
    # The default trust store (certifi's public roots), and a CA of its own: either way the
    # server's certificate is not verified, and the client stops there with no HTTP exchange.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for ca in (None, str(security.foreign_ca)):
        untrusting = SchemaRegistryClient(registry.client_config({"ssl.ca.location": ca, **NO_RETRIES}))
        with pytest.raises(httpx.ConnectError) as error:
            untrusting.get_subjects()
        verification = ssl_error_of(error.value)
        assert isinstance(verification, ssl.SSLCertVerificationError), repr(verification)
        assert verification.reason == "CERTIFICATE_VERIFY_FAILED"
        # 19: self-signed certificate in the chain, 20: unable to get the local issuer.
        assert verification.verify_code in (19, 20), verification.verify_message
    assert client.get_subjects() == []


def test_plain_http_to_the_tls_listener_gets_no_answer(registry, client):
    plaintext = SchemaRegistryClient(registry.client_config({"url": registry.url.replace("https://", "http://"), **NO_RETRIES}))
    with pytest.raises(httpx.TransportError) as error:
        plaintext.get_subjects()
    assert not isinstance(error.value, SchemaRegistryError)
    assert client.get_subjects() == []


def test_a_client_certificate_stands_in_for_the_password(registry, security):
    by_certificate = SchemaRegistryClient(
        registry.client_config(
            {
                "basic.auth.user.info": None,
                "ssl.certificate.location": str(security.admin_client_cert),
                "ssl.key.location": str(security.admin_client_key),
            }
        )
    )
    schema_id = by_certificate.register_schema("users-value", SCHEMA)
    assert by_certificate.get_schema(schema_id).schema_str == json.dumps(USER, separators=(",", ":"))
    assert by_certificate.get_subjects() == ["users-value"]
    assert by_certificate.get_latest_version("users-value").schema_id == schema_id


def test_a_client_certificate_of_an_unknown_ca_is_refused_in_the_handshake(registry, client, security):
    foreign = SchemaRegistryClient(
        registry.client_config(
            {
                "basic.auth.user.info": None,
                "ssl.certificate.location": str(security.foreign_client_cert),
                "ssl.key.location": str(security.foreign_client_key),
                **NO_RETRIES,
            }
        )
    )
    with pytest.raises(httpx.TransportError) as error:
        foreign.get_subjects()
    # TLS 1.3: the server's alert arrives on the client's first read.
    assert ssl_error_of(error.value).reason == "TLSV1_ALERT_UNKNOWN_CA"
    # And the service is none the worse for it.
    assert client.get_subjects() == []


def bearer_client(registry, token) -> SchemaRegistryClient:
    return SchemaRegistryClient(
        registry.client_config(
            {
                "basic.auth.user.info": None,
                "bearer.auth.credentials.source": "STATIC_TOKEN",
                "bearer.auth.token": token,
                # Confluent Cloud's routing header, which the client insists on: ignored here.
                "bearer.auth.logical.cluster": "lsrc-interop",
            }
        )
    )


def test_a_bearer_jwt_stands_in_for_the_password(registry, security):
    by_token = bearer_client(registry, security.jwt("ann"))
    schema_id = by_token.register_schema("users-value", SCHEMA)
    assert by_token.get_latest_version("users-value").schema_id == schema_id


@pytest.mark.parametrize(
    "claims, message",
    [
        pytest.param({"lifetime": -3600}, "the bearer token has expired", id="expired"),
        pytest.param({"audience": "another-service"}, "the bearer token's audience is not accepted", id="other audience"),
        pytest.param({"issuer": "https://evil.example"}, "the bearer token's issuer is not accepted", id="other issuer"),
    ],
)
def test_a_bad_bearer_jwt_is_refused_with_401_40101(registry, security, claims, message):
    assert_unauthenticated(refused(bearer_client(registry, security.jwt("ann", **claims)).get_subjects), message)


# ---------------------------------------------------------------------------------------------
# The messaging service's gRPC API


def health_check(channel) -> bytes:
    """grpc.health.v1.Health/Check of the server as a whole: the request is the empty
    message; the answer `08 01` is status SERVING."""
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check", request_serializer=lambda m: m, response_deserializer=lambda m: m
    )
    return check(b"", timeout=10)


def test_messaging_refuses_calls_without_credentials_or_with_wrong_ones(messaging, messaging_pb, security):
    pb2, stubs = messaging_pb.pb2, messaging_pb.grpc
    for authorization, message in (
        (None, None),
        (basic_authorization("admin", "not-the-password"), "invalid user name or password"),
        (basic_authorization("mallory", security.admin_password), "invalid user name or password"),
        (Secret(f"Bearer {security.jwt('ann', lifetime=-3600)}"), "the bearer token has expired"),
    ):
        channel = messaging.channel_with(authorization=authorization)
        try:
            with pytest.raises(grpc.RpcError) as error:
                stubs.MessagingServiceStub(channel).ListTopics(pb2.ListTopicsRequest(), timeout=10)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, error.value.details()
            if message is not None:
                assert error.value.details() == message
            # Health is open (AUTH_OPEN defaults to `health`).
            assert health_check(channel) == b"\x08\x01"
        finally:
            channel.close()


def test_messaging_admits_a_client_certificate_and_a_bearer_jwt(messaging, messaging_pb, security, topic):
    pb2, stubs = messaging_pb.pb2, messaging_pb.grpc
    for credentials in (
        {"client_cert": security.admin_client_cert, "client_key": security.admin_client_key},
        {"authorization": Secret(f"Bearer {security.jwt('ann')}")},
    ):
        channel = messaging.channel_with(**credentials)
        try:
            topics = stubs.MessagingServiceStub(channel).ListTopics(pb2.ListTopicsRequest(), timeout=30).topics
            assert topic in [t.name for t in topics]
        finally:
            channel.close()


def test_messaging_is_not_reached_by_a_client_that_does_not_trust_the_ca(messaging, messaging_pb, security):
    pb2, stubs = messaging_pb.pb2, messaging_pb.grpc
    channel = messaging.channel_with(ca=security.foreign_ca, authorization=security.admin_authorization())
    try:
        with pytest.raises(grpc.RpcError) as error:
            stubs.MessagingServiceStub(channel).ListTopics(pb2.ListTopicsRequest(), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE, error.value.details()
        assert "CERTIFICATE_VERIFY_FAILED" in error.value.details(), error.value.details()
    finally:
        channel.close()
