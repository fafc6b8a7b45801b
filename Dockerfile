# syntax=docker/dockerfile:1
# Build: the proxy alone (no embedded demo origin).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --no-default-features --bin s3-resign-proxy

# Run: small, non-root, with CA certificates for https origins.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/s3-resign-proxy /usr/local/bin/s3-resign-proxy
ENV HOST=0.0.0.0 PORT=8000 RUST_LOG=info
EXPOSE 8000
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/s3-resign-proxy"]
