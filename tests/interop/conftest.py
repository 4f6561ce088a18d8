"""Fixtures of the interop tests: a real registry process on a fresh Postgres database, serving
Confluent's HTTP API on a free port, and the stack's real Kafka.

Nothing here skips: when Postgres, Kafka or the registry binary is missing, the tests fail with a
message saying what to start (scripts/test starts the stack and builds the binary).
"""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("TRIBUTARY_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:55432/postgres")
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:59092")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class RegistryProcess:
    """A registry process on its own database, killed (and its database dropped) afterwards."""

    def __init__(self) -> None:
        self.database = f"interop_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE DATABASE {self.database}")
        base = ADMIN_URL.rsplit("/", 1)[0]
        self.http_port = free_port()
        # Where its gRPC API listens (the messaging service's REGISTRY_URL).
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"{base}/{self.database}",
            REGISTRY_GRPC_ADDR=self.grpc_addr,
            REGISTRY_HTTP_ADDR=f"127.0.0.1:{self.http_port}",
            REGISTRY_METRICS_ADDR="127.0.0.1:0",
            RUST_LOG="warn",
        )
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.process = subprocess.Popen([str(registry_binary())], env=env)
        self._wait_until_answering()

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the registry exited with {self.process.returncode} before answering")
            try:
                with urllib.request.urlopen(f"{self.url}/subjects", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"the registry did not answer on {self.url} within 20 s")

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
def registry():
    process = RegistryProcess()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(registry):
    return SchemaRegistryClient({"url": registry.url})


@pytest.fixture(scope="session")
def kafka_admin():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    try:
        admin.list_topics(timeout=15)
    except Exception as error:  # noqa: BLE001 - any failure here means "Kafka is not there"
        pytest.fail(f"cannot reach Kafka at {BOOTSTRAP}: {error}\nStart the stack first: scripts/stack up --infra")
    return admin


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


class MessagingProcess:
    """A messaging process against the stack's Kafka and a registry process, killed afterwards."""

    def __init__(self, registry: RegistryProcess, messaging_pb) -> None:
        import grpc

        self.addr = f"127.0.0.1:{free_port()}"
        env = dict(os.environ)
        env.update(
            MESSAGING_GRPC_ADDR=self.addr,
            MESSAGING_METRICS_ADDR="127.0.0.1:0",
            REGISTRY_URL=f"http://{registry.grpc_addr}",
            KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
            KAFKA_PROPERTIES="linger.ms=1,client.id=tributary-interop",
            RUST_LOG="warn",
        )
        self.process = subprocess.Popen([str(messaging_binary())], env=env)
        self.channel = grpc.insecure_channel(self.addr)
        self.stub = messaging_pb.grpc.MessagingServiceStub(self.channel)
        self._wait_until_answering(messaging_pb, grpc)

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
        pytest.fail(f"the messaging service did not answer on {self.addr} within 30 s: {last}")

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
def messaging(registry, kafka_admin, messaging_pb):
    """A messaging process using the `registry` fixture's registry and the stack's Kafka; its
    gRPC stub is `messaging.stub`."""
    process = MessagingProcess(registry, messaging_pb)
    try:
        yield process
    finally:
        process.stop()
