"""Fixtures of the interop tests: a real registry process on a fresh Postgres database, serving
Confluent's HTTP API on a free port, and the stack's real Kafka.

The services run as they are deployed by default: over TLS, with authentication. Their server
certificate is the local stack's (`scripts/stack up --infra` makes a CA and certificates under
`.stack/tls/`); their users (`admin` with a random password, and `messaging`) are this test
session's own, in a users file made with the registry binary's `hash-password`, next to a JWKS
whose key signs the session's JWTs. Clients trust the stack CA and call as `admin`.

Nothing here skips: when Postgres, Kafka, the stack's certificates or the registry binary is
missing, the tests fail with a message saying what to start (scripts/test starts the stack and
builds the binary). No password is ever printed: they live in `Secret`s, whose repr hides them.
"""

import base64
import json
import os
import secrets
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("TRIBUTARY_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:55432/postgres")
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:59092")
STACK_DIR = Path(os.environ.get("TRIBUTARY_STACK_DIR", ROOT / ".stack"))
# The stack's SASL_SSL listener (SCRAM-SHA-512), as `scripts/stack env` exports it.
SASL_SSL_BOOTSTRAP = os.environ.get("KAFKA_SASL_SSL_BOOTSTRAP_SERVERS", "127.0.0.1:59094")
KAFKA_SASL_USERNAME = os.environ.get("KAFKA_SASL_USERNAME", "tributary")
KAFKA_SASL_PASSWORD_FILE = Path(os.environ.get("KAFKA_SASL_PASSWORD_FILE", STACK_DIR / "secrets" / "kafka.password"))

# What the services' JWT authentication requires of a bearer token.
JWT_ISSUER = "https://issuer.tributary.test"
JWT_AUDIENCE = "tributary-interop"
JWT_KEY_ID = "interop-key-1"

# The only variables of this process's environment a service process gets: nothing that
# `scripts/stack env` exports for the stack's own services (REGISTRY_URL, credentials, Kafka
# settings, ...) leaks into the services the tests start with their own settings.
INHERITED_ENV = ("PATH", "HOME", "TMPDIR", "LANG")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env() -> dict:
    return {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}


def psql(sql: str) -> None:
    result = subprocess.run(
        ["psql", ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        pytest.fail(
            f"cannot run {sql!r} on the test Postgres at {ADMIN_URL}: {result.stderr.strip()}\n"
            "Start the stack first: scripts/stack up --infra (scripts/test does it for you)"
        )


def database_url(database: str) -> str:
    """The URL of `database` on the admin URL's server. When `DATABASE_URL` (exported by
    `scripts/stack env`) names the same server, its TLS settings (`sslmode=verify-full&
    sslrootcert=...`) come along, so the registry reaches Postgres as the stack deploys it."""
    admin = urllib.parse.urlsplit(ADMIN_URL)
    query = admin.query
    stack = urllib.parse.urlsplit(os.environ.get("DATABASE_URL", ""))
    if not query and stack.query and (stack.hostname, stack.port) == (admin.hostname, admin.port):
        query = stack.query
    return urllib.parse.urlunsplit((admin.scheme, admin.netloc, f"/{database}", query, ""))


def drop_database_best_effort(database: str) -> None:
    """Clean-up only: the databases are throwaway (the Rust tests never drop theirs).

    DROP DATABASE makes Postgres checkpoint and fsync, which can take long on a busy disk, so
    it runs in the background and a failure never fails the test that used the database.
    """
    subprocess.Popen(
        ["psql", ADMIN_URL, "-q", "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def registry_binary() -> Path:
    binary = Path(os.environ.get("TRIBUTARY_REGISTRY_BIN", ROOT / "target" / "debug" / "registry"))
    if not binary.exists():
        pytest.fail(f"registry binary not found at {binary}; build it (cargo build -p tributary-registry) or run scripts/test")
    return binary


# ---------------------------------------------------------------------------------------------
# Security: the stack's certificates, this session's users, JWKS and an unknown CA.


class Secret(str):
    """A password or token: usable as the string it is, but its repr (what pytest shows of a
    failed assertion's operands) never reveals it."""

    def __repr__(self) -> str:
        return "Secret(<redacted>)"


def basic_authorization(user: str, password: str) -> Secret:
    """The `Authorization` header value of HTTP basic credentials."""
    return Secret("Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return path


def _make_certificate(subject_cn: str, issuer_cn: str, key, signing_key, ca: bool):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


@dataclass(frozen=True, repr=False)
class Security:
    """The session's perimeter: the stack CA and its server and client certificates, users
    `admin` and `messaging` with random passwords, a JWKS whose key signs `jwt()`s, and a client
    certificate (CN=admin) from a CA the services do not know."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    # The stack's client certificate for principal `admin` (CN), signed by the stack CA.
    admin_client_cert: Path
    admin_client_key: Path
    users: Path
    admin_password: Secret
    messaging_password_file: Path
    jwks: Path
    # The authorization policy: every authenticated principal may do everything (the
    # authorization interop tests bring policies of their own).
    policy: Path
    # The same CN, signed by a CA nobody trusts.
    foreign_ca: Path
    foreign_client_cert: Path
    foreign_client_key: Path
    jwt_key: object

    def __repr__(self) -> str:
        return f"Security(dir={self.dir})"

    def admin_authorization(self) -> Secret:
        return basic_authorization("admin", self.admin_password)

    def server_env(self) -> dict:
        """A service's security settings: TLS with the stack's server certificate, client
        certificates optional (verified against the stack CA), and basic, JWT and mTLS
        authentication."""
        return {
            "TLS": "on",
            "TLS_CERT_FILE": str(self.server_cert),
            "TLS_KEY_FILE": str(self.server_key),
            "TLS_CLIENT_CA_FILE": str(self.ca),
            "TLS_CLIENT_AUTH": "optional",
            "AUTH": "basic,jwt,mtls",
            "AUTH_USERS_FILE": str(self.users),
            "AUTH_JWKS_FILE": str(self.jwks),
            "AUTH_JWT_ISSUER": JWT_ISSUER,
            "AUTH_JWT_AUDIENCE": JWT_AUDIENCE,
            "AUTHZ_POLICY_FILE": str(self.policy),
        }

    def jwt(self, subject: str, lifetime: int = 3600, issuer: str = JWT_ISSUER, audience: str = JWT_AUDIENCE) -> Secret:
        """An ES256 JWT signed by the JWKS's key, expiring `lifetime` seconds from now
        (negative: already expired)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT", "kid": JWT_KEY_ID}
        claims = {"sub": subject, "iss": issuer, "aud": audience, "iat": now, "exp": now + lifetime}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.jwt_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return Secret(f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")


def hash_password(user: str, password: str) -> str:
    """`user:$argon2id$...`, from the registry binary's `hash-password` (password on stdin)."""
    result = subprocess.run(
        [str(registry_binary()), "hash-password", "--user", user],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        env=base_env(),
        timeout=30,
    )
    if result.returncode != 0:
        pytest.fail(f"registry hash-password --user {user} failed ({result.returncode}): {result.stderr.strip()}")
    line = result.stdout.strip()
    assert line.startswith(f"{user}:$argon2id$"), "hash-password printed no argon2id users-file line"
    return line


@pytest.fixture(scope="session")
def security(tmp_path_factory) -> Security:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tls = STACK_DIR / "tls"
    stack_files = {name: tls / name for name in ("ca.pem", "server.pem", "server.key", "admin-client.pem", "admin-client.key")}
    missing = [str(path) for path in stack_files.values() if not path.exists()]
    if missing:
        pytest.fail(f"the stack's certificates are missing ({', '.join(missing)}); run scripts/stack up --infra")

    folder = tmp_path_factory.mktemp("security")
    os.chmod(folder, 0o700)
    admin_password = Secret(secrets.token_urlsafe(24))
    messaging_password = Secret(secrets.token_urlsafe(24))
    users = folder / "users"
    users_text = f"# interop test users\n{hash_password('admin', admin_password)}\n{hash_password('messaging', messaging_password)}\n"
    _write_private(users, users_text.encode())
    messaging_password_file = _write_private(folder / "messaging.password", f"{messaging_password}\n".encode())

    jwt_key = ec.generate_private_key(ec.SECP256R1())
    numbers = jwt_key.public_key().public_numbers()
    jwks = folder / "jwks.json"
    jwks.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "kty": "EC",
                        "crv": "P-256",
                        "use": "sig",
                        "alg": "ES256",
                        "kid": JWT_KEY_ID,
                        "x": _b64url(numbers.x.to_bytes(32, "big")),
                        "y": _b64url(numbers.y.to_bytes(32, "big")),
                    }
                ]
            }
        )
    )

    policy = folder / "policy.yaml"
    policy.write_text(
        "roles:\n  everything:\n    rules:\n      - allow: ['*']\n        on: ['*']\n"
        "bindings:\n  - role: everything\n    to: ['*']\n"
    )

    foreign_ca_key = ec.generate_private_key(ec.SECP256R1())
    foreign_ca_cert = _make_certificate("an unknown CA", "an unknown CA", foreign_ca_key, foreign_ca_key, ca=True)
    foreign_key = ec.generate_private_key(ec.SECP256R1())
    foreign_cert = _make_certificate("admin", "an unknown CA", foreign_key, foreign_ca_key, ca=False)
    pem = serialization.Encoding.PEM
    foreign_ca = folder / "foreign-ca.pem"
    foreign_ca.write_bytes(foreign_ca_cert.public_bytes(pem))
    foreign_client_cert = folder / "foreign-client.pem"
    foreign_client_cert.write_bytes(foreign_cert.public_bytes(pem))
    foreign_client_key = _write_private(
        folder / "foreign-client.key",
        foreign_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )

    return Security(
        dir=folder,
        ca=stack_files["ca.pem"],
        server_cert=stack_files["server.pem"],
        server_key=stack_files["server.key"],
        admin_client_cert=stack_files["admin-client.pem"],
        admin_client_key=stack_files["admin-client.key"],
        users=users,
        admin_password=admin_password,
        messaging_password_file=messaging_password_file,
        jwks=jwks,
        policy=policy,
        foreign_ca=foreign_ca,
        foreign_client_cert=foreign_client_cert,
        foreign_client_key=foreign_client_key,
        jwt_key=jwt_key,
    )


def https_request(url: str, ca: Path, authorization=None, timeout: float = 5.0):
    """GET `url` trusting only `ca`: (status, headers, parsed JSON body or None). HTTP errors
    are answers, not exceptions."""
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(url)
    if authorization is not None:
        request.add_unredirected_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return status, headers, parsed


# ---------------------------------------------------------------------------------------------
# The registry


class RegistryProcess:
    """A registry process on its own database, over TLS with authentication, killed (and its
    database dropped) afterwards. Its log (standard output and error, audit lines included) goes
    to `log` when given, else nowhere."""

    def __init__(self, security: Security, log: Path = None) -> None:
        self.security = security
        self.database = f"interop_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE DATABASE {self.database}")
        self.http_port = free_port()
        # Where its gRPC API listens (the messaging service's REGISTRY_URL).
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        env = base_env()
        env.update(security.server_env())
        env.update(
            DATABASE_URL=database_url(self.database),
            REGISTRY_GRPC_ADDR=self.grpc_addr,
            REGISTRY_HTTP_ADDR=f"127.0.0.1:{self.http_port}",
            REGISTRY_METRICS_ADDR="127.0.0.1:0",
            RUST_LOG="warn",
        )
        self.url = f"https://127.0.0.1:{self.http_port}"
        self.log = log
        if log is None:
            self.process = subprocess.Popen([str(registry_binary())], env=env, stdout=subprocess.DEVNULL)
        else:
            with open(log, "wb") as output:
                self.process = subprocess.Popen(
                    [str(registry_binary())], env=env, stdout=output, stderr=subprocess.STDOUT
                )
        self._wait_until_answering()

    def client_config(self, changes: dict = None) -> dict:
        """A SchemaRegistryClient configuration: this registry, trusting the stack CA, as
        `admin` with basic credentials; `changes` are set over it (a None value drops a key)."""
        config = {
            "url": self.url,
            "basic.auth.user.info": Secret(f"admin:{self.security.admin_password}"),
            "ssl.ca.location": str(self.security.ca),
        }
        for key, value in (changes or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        return config

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + 20
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the registry exited with {self.process.returncode} before answering")
            try:
                status, _, body = https_request(
                    f"{self.url}/subjects", self.security.ca, self.security.admin_authorization(), timeout=1
                )
                if status == 200:
                    return
                last = f"HTTP {status}: {body}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError) as error:
                last = error
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"the registry did not answer GET /subjects as admin over TLS on {self.url} within 20 s: {last}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        drop_database_best_effort(self.database)


@pytest.fixture
def registry(security):
    process = RegistryProcess(security)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(registry):
    """A SchemaRegistryClient calling the registry over TLS as `admin` (basic credentials)."""
    return SchemaRegistryClient(registry.client_config())


# ---------------------------------------------------------------------------------------------
# Kafka: the PLAINTEXT listener for most tests, the SASL_SSL one (SCRAM-SHA-512) for some.


@pytest.fixture(scope="session")
def kafka_admin():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    try:
        admin.list_topics(timeout=15)
    except Exception as error:  # noqa: BLE001 - any failure here means "Kafka is not there"
        pytest.fail(f"cannot reach Kafka at {BOOTSTRAP}: {error}\nStart the stack first: scripts/stack up --infra")
    return admin


@pytest.fixture(scope="session")
def kafka_sasl_ssl(security) -> dict:
    """librdkafka settings of the stack's SASL_SSL listener: TLS verified against the stack
    CA, SCRAM-SHA-512 as the stack's Kafka user."""
    if not KAFKA_SASL_PASSWORD_FILE.exists():
        pytest.fail(f"the stack's Kafka password file {KAFKA_SASL_PASSWORD_FILE} is missing; run scripts/stack up --infra")
    password = KAFKA_SASL_PASSWORD_FILE.read_text().splitlines()[0]
    return {
        "bootstrap.servers": SASL_SSL_BOOTSTRAP,
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": KAFKA_SASL_USERNAME,
        "sasl.password": Secret(password),
        "ssl.ca.location": str(security.ca),
    }


@pytest.fixture
def topic(kafka_admin):
    name = f"interop-{uuid.uuid4().hex[:12]}"
    futures = kafka_admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)], operation_timeout=30)
    futures[name].result(timeout=30)
    yield name
    kafka_admin.delete_topics([name], operation_timeout=30)


# ---------------------------------------------------------------------------------------------
# Messaging: the messaging binary as a real process, and Python gRPC stubs generated from proto/.


def messaging_binary() -> Path:
    default = registry_binary().parent / "messaging"
    binary = Path(os.environ.get("TRIBUTARY_MESSAGING_BIN", default))
    if not binary.exists():
        pytest.fail(f"messaging binary not found at {binary}; build it (cargo build -p tributary-messaging) or run scripts/test")
    return binary


@pytest.fixture(scope="session")
def messaging_pb(tmp_path_factory):
    """The generated `messaging_pb2` and `messaging_pb2_grpc` modules of
    proto/tributary/messaging/v1/messaging.proto, as a namespace with both."""
    import importlib
    import sys
    import types

    from grpc_tools import protoc

    try:
        import importlib.resources as resources

        well_known = str(resources.files("grpc_tools") / "_proto")
    except (ImportError, AttributeError):  # pragma: no cover - older Pythons
        import pkg_resources

        well_known = pkg_resources.resource_filename("grpc_tools", "_proto")
    out = tmp_path_factory.mktemp("grpc_stubs")
    proto_root = ROOT / "proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(proto_root / "tributary" / "messaging" / "v1" / "messaging.proto"),
        ]
    )
    if status != 0:
        pytest.fail(f"grpc_tools.protoc failed ({status}) on proto/tributary/messaging/v1/messaging.proto")
    # The generated modules import each other as tributary.messaging.v1.*; add __init__.py files
    # so the packages resolve from the temp dir.
    for folder in (out / "tributary", out / "tributary" / "messaging", out / "tributary" / "messaging" / "v1"):
        (folder / "__init__.py").touch()
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("tributary.messaging.v1.messaging_pb2")
        pb2_grpc = importlib.import_module("tributary.messaging.v1.messaging_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return types.SimpleNamespace(pb2=pb2, grpc=pb2_grpc)


def _authorization_plugin(value: str):
    import grpc

    class Authorization(grpc.AuthMetadataPlugin):
        """Adds `authorization: <value>` to every call."""

        def __call__(self, context, callback):
            callback((("authorization", value),), None)

    return Authorization()


def grpc_channel(addr: str, ca: Path, authorization=None, client_cert: Path = None, client_key: Path = None):
    """A TLS gRPC channel to `addr` trusting `ca`, presenting a client certificate when given,
    whose calls carry `authorization` (an `Authorization` header value) when given."""
    import grpc

    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client_key.read_bytes() if client_key else None,
        certificate_chain=client_cert.read_bytes() if client_cert else None,
    )
    if authorization is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.metadata_call_credentials(_authorization_plugin(authorization), name="basic")
        )
    return grpc.secure_channel(addr, credentials)


class MessagingProcess:
    """A messaging process, over TLS with authentication, against the stack's Kafka (its
    SASL_SSL listener, as the stack deploys it) and a registry process (over TLS as user
    `messaging`), killed afterwards. `stub` calls it as `admin`."""

    def __init__(self, registry: RegistryProcess, messaging_pb, kafka_sasl_ssl: dict, extra_env: dict = None) -> None:
        import grpc

        security = registry.security
        self.security = security
        self.messaging_pb = messaging_pb
        self.addr = f"127.0.0.1:{free_port()}"
        self.rest_addr = f"127.0.0.1:{free_port()}"
        self.rest_url = f"https://{self.rest_addr}"
        # librdkafka settings as KAFKA_PROPERTIES (`\,` escapes a comma); the password from its file.
        ca_escaped = kafka_sasl_ssl["ssl.ca.location"].replace(",", "\\,")
        kafka_properties = ",".join(
            [
                "security.protocol=SASL_SSL",
                "sasl.mechanisms=SCRAM-SHA-512",
                f"sasl.username={kafka_sasl_ssl['sasl.username']}",
                f"ssl.ca.location={ca_escaped}",
                "linger.ms=1",
                "client.id=tributary-interop",
            ]
        )
        env = base_env()
        env.update(security.server_env())
        env.update(
            MESSAGING_GRPC_ADDR=self.addr,
            MESSAGING_REST_ADDR=self.rest_addr,
            MESSAGING_METRICS_ADDR="127.0.0.1:0",
            REGISTRY_URL=f"https://{registry.grpc_addr}",
            REGISTRY_CA_FILE=str(security.ca),
            REGISTRY_USERNAME="messaging",
            REGISTRY_PASSWORD_FILE=str(security.messaging_password_file),
            KAFKA_BOOTSTRAP_SERVERS=kafka_sasl_ssl["bootstrap.servers"],
            KAFKA_PROPERTIES=kafka_properties,
            KAFKA_SASL_PASSWORD_FILE=str(KAFKA_SASL_PASSWORD_FILE),
            RUST_LOG="warn",
        )
        env.update(extra_env or {})
        self.process = subprocess.Popen([str(messaging_binary())], env=env, stdout=subprocess.DEVNULL)
        self.channel = self.channel_with(authorization=security.admin_authorization())
        self.stub = messaging_pb.grpc.MessagingServiceStub(self.channel)
        self._wait_until_answering(messaging_pb, grpc)

    def channel_with(self, ca: Path = None, authorization=None, client_cert: Path = None, client_key: Path = None):
        """A TLS channel to this service (trusting the stack CA unless `ca` is given) with
        the given credentials."""
        return grpc_channel(self.addr, ca or self.security.ca, authorization, client_cert, client_key)

    def _wait_until_answering(self, messaging_pb, grpc) -> None:
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the messaging service exited with {self.process.returncode} before answering")
            try:
                self.stub.ListTopics(messaging_pb.pb2.ListTopicsRequest(), timeout=2)
                return
            except grpc.RpcError as error:
                last = error
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"the messaging service did not answer ListTopics as admin over TLS on {self.addr} within 30 s: {last}")

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def messaging(registry, kafka_admin, messaging_pb, kafka_sasl_ssl):
    """A messaging process using the `registry` fixture's registry and the stack's Kafka; its
    gRPC stub (calling as `admin` over TLS) is `messaging.stub`."""
    process = MessagingProcess(registry, messaging_pb, kafka_sasl_ssl)
    try:
        yield process
    finally:
        process.stop()
