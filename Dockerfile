# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are compiled in a layer of their own, so a
# change to the service's code rebuilds only the service.

FROM rust:1-bookworm AS build
WORKDIR /app

# 1. Dependencies only, against placeholder sources.
COPY Cargo.toml Cargo.lock ./
COPY loadgen/Cargo.toml loadgen/Cargo.toml
COPY testkit/Cargo.toml testkit/Cargo.toml
RUN mkdir -p src loadgen/src testkit/src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > build.rs \
    && echo 'fn main() {}' > loadgen/src/main.rs \
    && touch testkit/src/lib.rs \
    && echo 'fn main() {}' > benches/hot_paths.rs \
    && echo 'fn main() {}' > benches/profile_images.rs \
    && cargo build --release --locked -p account-service \
    && rm -rf src build.rs target/release/.fingerprint/account-service-*

# 2. The service itself.
COPY build.rs ./
COPY proto proto
COPY migrations migrations
COPY templates templates
COPY src src
RUN cargo build --release --locked -p account-service --bin account-service

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/account-service --create-home account
COPY --from=build /app/target/release/account-service /usr/local/bin/account-service
USER 10001
WORKDIR /var/lib/account-service
ENV GRPC_ADDR=0.0.0.0:50051 \
    HTTP_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 50051 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/account-service"]
