# The DittoFS operator image (binary /usr/local/bin/dittofs-operator).
#
# Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t ghcr.io/dittofs/dittofs-operator:0.1.0 .

# ---- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
# protoc: proto/build.rs compiles the control API's .proto files.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Install the toolchain pinned by rust-toolchain.toml in a layer of its own, so a source
# change does not download it again.
COPY rust-toolchain.toml ./
RUN rustup toolchain install
COPY . .
RUN cargo build --release --locked -p dittofs-operator --bin dittofs-operator \
 && install -D -m 0755 target/release/dittofs-operator /out/dittofs-operator

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 dittofs \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin dittofs
COPY --from=build /out/dittofs-operator /usr/local/bin/dittofs-operator
USER 65532:65532
# Metrics, /healthz and /readyz (--metrics-bind).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dittofs-operator"]
