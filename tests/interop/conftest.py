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
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"{base}/{self.database}",
            REGISTRY_GRPC_ADDR=f"127.0.0.1:{free_port()}",
            REGISTRY_HTTP_ADDR=f"127.0.0.1:{self.http_port}",
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
        psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


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
