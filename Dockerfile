# syntax=docker/dockerfile:1
# bar-ingest: multi-stage build. The build stage compiles the release binary; the runtime stage
# is Debian slim with the binary, a non-root user and busybox (for the HEALTHCHECK's wget).
# Build from the repository root:  docker build -t bar-ingest .
# Not built on the development machines (no container engine there): see deploy/README.md.

FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The workspace's development tool (bar-gen, a dev-dependency) and the Python package's crate:
# cargo reads their manifests to resolve the workspace, even though only bar-ingest is built.
COPY tools ./tools
COPY python ./python
# The registry and target caches survive between builds; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin bar-ingest \
 && cp target/release/bar-ingest /usr/local/bin/bar-ingest \
 && strip /usr/local/bin/bar-ingest

FROM debian:bookworm-slim
# busybox-static: one static binary whose `wget` the HEALTHCHECK uses (no curl, no libcurl).
# ca-certificates: TLS to the cluster with a public CA.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/bar-ingest --shell /usr/sbin/nologin bar-ingest \
 && mkdir -p /var/lib/bar-ingest/inbox /etc/bar-ingest \
 && chown -R bar-ingest:bar-ingest /var/lib/bar-ingest
COPY --from=build /usr/local/bin/bar-ingest /usr/local/bin/bar-ingest
COPY config/bar-ingest.example.toml /etc/bar-ingest/bar-ingest.toml
USER bar-ingest:bar-ingest
# The inbox and every state folder on one volume: the claim rename cannot cross volumes (EXDEV).
VOLUME ["/var/lib/bar-ingest"]
ENV BAR_INGEST_CONFIG=/etc/bar-ingest/bar-ingest.toml \
    BAR_INGEST_HEALTHZ_URL=http://127.0.0.1:9464/healthz
# /healthz answers 200 while the process runs (also while it waits for the database).
# Point BAR_INGEST_HEALTHZ_URL at metrics.listen if you change it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD busybox wget -q -O /dev/null "$BAR_INGEST_HEALTHZ_URL" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/bar-ingest"]
CMD ["run"]
