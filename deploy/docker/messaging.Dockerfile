# syntax=docker/dockerfile:1
# The messaging image. Build from the repository root (the context is the whole workspace,
# trimmed by .dockerignore):
#   docker build -f deploy/docker/messaging.Dockerfile -t ghcr.io/tributary/messaging:0.1.0 .
# gRPC 50052, /metrics 9464 (the Helm chart sets MESSAGING_METRICS_ADDR=0.0.0.0:9464; the
# binary's own default is 9465, so that it runs beside the registry on one host).

# the workspace's rust-version is 1.94; CI and development use 1.95
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# rdkafka-sys builds librdkafka from source, with OpenSSL (make, cc, pkg-config, zlib1g-dev and
# libssl-dev are in the rust:bookworm image); protoc comes from the protoc-bin-vendored crate
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tributary-messaging --bin messaging \
    && install -D -m 0755 target/release/messaging /out/messaging \
    # librdkafka links the system zlib, which distroless/cc-debian12 lacks: ship the builder's
    # (same Debian release), at the same multiarch path
    && libdir="/usr/lib/$(gcc -dumpmachine)" \
    && install -D -m 0644 "$(readlink -f "$libdir/libz.so.1")" "/out/root$libdir/libz.so.1" \
    # fail the build if the binary needs anything else the runtime image does not have
    && ! ldd /out/messaging | grep -v -E 'linux-vdso|ld-linux|lib(c|m|gcc_s|z|ssl|crypto|stdc\+\+)\.so' | grep .

# glibc, libgcc_s, libssl, CA certificates and the nonroot user (65532); no shell
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="tributary messaging" \
      org.opencontainers.image.description="Produce to and consume from Kafka over gRPC, Avro through the tributary registry" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/root/ /
COPY --from=builder /out/messaging /usr/local/bin/messaging
USER 65532:65532
# glibc's malloc arenas: unset, every thread may get one, each keeping what it freed
ENV MALLOC_ARENA_MAX=2
EXPOSE 50052 9464
ENTRYPOINT ["/usr/local/bin/messaging"]
