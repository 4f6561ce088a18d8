# syntax=docker/dockerfile:1
# The registry image. Build from the repository root (the context is the whole workspace,
# trimmed by .dockerignore):
#   docker build -f deploy/docker/registry.Dockerfile -t ghcr.io/tributary/registry:0.1.0 .
# The migrations/ folder is compiled into the binary (sqlx::migrate!) and applied at startup, so
# the image holds the binary alone. gRPC 50051, Confluent HTTP API 8081, /metrics 9464.

# the workspace's rust-version is 1.94; CI and development use 1.95
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# protoc comes from the protoc-bin-vendored crate; Cargo.lock is honoured (--locked)
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tributary-registry --bin registry \
    && install -D -m 0755 target/release/registry /out/registry

# glibc, libgcc_s, CA certificates and the nonroot user (65532); no shell, no package manager
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="tributary registry" \
      org.opencontainers.image.description="Avro schema registry: gRPC and Confluent Schema Registry HTTP API, stored in Postgres" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/registry /usr/local/bin/registry
USER 65532:65532
EXPOSE 50051 8081 9464
ENTRYPOINT ["/usr/local/bin/registry"]
