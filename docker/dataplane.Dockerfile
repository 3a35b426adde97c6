# The DittoFS data-plane image: the file server `dfs` (entrypoint) and its client `dfsctl`.
#
# Build from the repository root:
#   docker build -f docker/dataplane.Dockerfile -t ghcr.io/dittofs/dittofs:0.1.0 .
#
# Run standalone (NFSv3 on 2049, one share /export; state under the volume):
#   docker run -d --name dfs -p 2049:2049 -v dittofs-data:/var/lib/dittofs ghcr.io/dittofs/dittofs:0.1.0
#   docker exec dfs dfsctl --help
# The operator replaces the arguments with its own configuration file.

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
RUN cargo build --release --locked -p dittofs-server --bin dfs -p dittofs-cli --bin dfsctl \
 && install -D -m 0755 target/release/dfs /out/dfs \
 && install -D -m 0755 target/release/dfsctl /out/dfsctl

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 dittofs \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin dittofs \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/dittofs \
 && install -d -m 0755 /etc/dittofs \
 && printf '%s\n' \
      '# Standalone defaults of the image (the operator passes a configuration of its own).' \
      '# Everything else is the built-in default: see `dfs init --output -`.' \
      'nfs:' \
      '  port: 2049' \
      > /etc/dittofs/dittofs.yaml
COPY --from=build /out/dfs /out/dfsctl /usr/local/bin/
USER 65532:65532
# Server state: embedded metadata, local blocks, the control token.
VOLUME ["/var/lib/dittofs"]
# 2049: NFSv3 + MOUNT. 9000: the gRPC control API (loopback unless the configuration binds
# it elsewhere, as the operator's does).
EXPOSE 2049 9000
ENTRYPOINT ["/usr/local/bin/dfs"]
CMD ["start", "--config", "/etc/dittofs/dittofs.yaml", "--data-dir", "/var/lib/dittofs"]
