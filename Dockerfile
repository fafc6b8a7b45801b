# syntax=docker/dockerfile:1
# Build: the proxy alone (no embedded demo origin), from the locked dependency set.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# Cargo.toml declares the bench target, so its source must be present.
COPY benches ./benches
# The cache mounts keep the registry and target/ between builds; the binary is
# copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin s3-resign-proxy \
    && cp target/release/s3-resign-proxy /s3-resign-proxy

# Run: distroless (glibc, CA certificates for https origins, no shell), non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /s3-resign-proxy /s3-resign-proxy
ENV HOST=0.0.0.0 PORT=8000 RUST_LOG=info
EXPOSE 8000
USER nonroot:nonroot
# SIGTERM drains: /healthz says 503 draining, the proxy serves for DRAIN_GRACE
# (5 s), then finishes in-flight transfers for up to SHUTDOWN_TIMEOUT (30 s).
# `docker stop` kills after 10 s unless told otherwise: use `docker stop -t 40`
# (compose: stop_grace_period: 40s).
STOPSIGNAL SIGTERM
# No curl in the image: the binary checks its own /healthz (127.0.0.1:$PORT;
# exit 0 on 200 ok; 5 s timeout). Unhealthy also when the origin is down (450)
# or the proxy is draining (503).
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 CMD ["/s3-resign-proxy", "healthcheck"]
ENTRYPOINT ["/s3-resign-proxy"]
