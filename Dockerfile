# syntax=docker/dockerfile:1
# One image for every role: `serve --role ingest|query|all`, `migrate`, `healthcheck`.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: a source change rebuilds only this crate.
COPY Cargo.toml Cargo.lock ./
# diesel and diesel-async, patched to give the SQLSTATE of a database error (vendor/README.md).
COPY vendor vendor
# Stub every target the manifest names, so that it parses before the sources are copied.
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/ingest.rs && echo 'fn main() {}' > benches/load.rs \
    && cargo build --release --locked --bin agenttracer \
    && rm -rf src benches
COPY src src
COPY migrations migrations
COPY build.rs build.rs
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin agenttracer

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --no-create-home agenttracer
COPY --from=build /src/target/release/agenttracer /usr/local/bin/agenttracer
USER 10001:10001
EXPOSE 8000 8001 4317
# Probes the listeners of the role in AGENTTRACER_ROLE / server.role.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["agenttracer", "healthcheck"]
ENTRYPOINT ["agenttracer"]
CMD ["serve"]
