# syntax=docker/dockerfile:1
# Multi-stage build of optifork-server: a full Rust toolchain to build, a distroless image
# (glibc, no shell, non-root) to run. The final image holds one binary.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and build artifacts between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p optifork-server \
 && cp target/release/optifork-server /optifork-server \
 && strip /optifork-server \
 && mkdir -p /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /optifork-server /usr/local/bin/optifork-server
COPY --from=build --chown=nonroot:nonroot /data /data
WORKDIR /data
ENV OPTIFORK_LISTEN=0.0.0.0:8000 \
    OPTIFORK_DATABASE_URL=/data/optifork.db
EXPOSE 8000
# distroless has no shell or curl: the binary probes itself.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["/usr/local/bin/optifork-server", "--probe", "http://127.0.0.1:8000/readyz"]
ENTRYPOINT ["/usr/local/bin/optifork-server"]
