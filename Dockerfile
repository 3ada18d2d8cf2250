# bar-ingest: multi-stage build. Not built on the development machines (no container engine
# there); see README "What does not work yet".
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/bar-ingest

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/bar-ingest --shell /usr/sbin/nologin bar-ingest \
 && mkdir -p /var/lib/bar-ingest/inbox /etc/bar-ingest \
 && chown -R bar-ingest:bar-ingest /var/lib/bar-ingest
COPY --from=build /src/target/release/bar-ingest /usr/local/bin/bar-ingest
COPY config/bar-ingest.example.toml /etc/bar-ingest/bar-ingest.toml
USER bar-ingest
VOLUME ["/var/lib/bar-ingest"]
ENV BAR_INGEST_CONFIG=/etc/bar-ingest/bar-ingest.toml
ENTRYPOINT ["/usr/local/bin/bar-ingest"]
CMD ["run"]
