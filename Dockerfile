# syntax=docker/dockerfile:1
#
# One image for all three binaries: sluice-ingest, sluice-dispatcher and the sluice CLI.
# The Helm chart sets each container's command; see docs/operations.md ("The container image").
#
#   docker build -t sluice:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg SOURCE=<repository URL> .

# The toolchain the repository is built and tested with (rustc 1.95), on the Debian release
# whose glibc the runtime image carries (bookworm = Debian 12).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binaries are copied
# out of the cached target folder in the same step, since the cache is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
      -p sluice-ingest -p sluice-dispatcher \
      --bin sluice-ingest --bin sluice-dispatcher --bin sluice \
    && install -D -m 0755 -t /out \
      target/release/sluice-ingest target/release/sluice-dispatcher target/release/sluice

# glibc, libgcc_s and the CA certificates (an https webhook interceptor without a caBundle is
# verified against the system's roots); no shell, no package manager. `nonroot` is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
# Where the source lives; the repository names none of its own, so the builder says it.
ARG SOURCE=""
LABEL org.opencontainers.image.title="sluice" \
      org.opencontainers.image.description="Tekton Triggers at webhook scale: sluice-ingest, sluice-dispatcher and the sluice CLI" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY --from=builder /out/ /usr/local/bin/

# Numeric, so that a pod's `runAsNonRoot: true` can be verified by the kubelet.
USER 65532:65532
# ingest's webhooks (--listen); every binary's /metrics, /healthz and /readyz (--metrics-addr).
EXPOSE 8080 9090
# No entrypoint: the chart names the binary. Run bare, the image prints the CLI's help.
CMD ["/usr/local/bin/sluice", "--help"]
