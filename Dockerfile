# pulso-flow image: the CLI (`run`, `migrate`, …) and the dashboard API (`serve`) in one binary.
#
#   docker build -t pulso-flow .                       # builds the binary here (needs rust:*)
#   docker build --target runtime-prebuilt \
#     --build-arg BINARY=target/release/pulso-flow -t pulso-flow .   # packages a binary built outside
#
# Both end in the same runtime: Debian bookworm-slim, CA certificates (sslrootcert=system,
# rediss://, BigQuery), tini as PID 1 (forwards SIGTERM, reaps), a non-root user, the pipelines
# with their SQL and the migrations under /app. The migrations are also embedded in the binary
# (`migrate` needs no files); the pipelines read sql/ and examples/data/ from disk, relative to
# the pipeline file.

ARG RUST_VERSION=1.95

# --- build: the release binary ------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pulso-flow \
 && install -D -m 0755 target/release/pulso-flow /out/pulso-flow

# --- runtime-base: everything but the binary ------------------------------------------------------
FROM debian:bookworm-slim AS runtime-base
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pulso \
 && useradd --system --uid 10001 --gid pulso --home-dir /app --no-create-home --shell /usr/sbin/nologin pulso
WORKDIR /app
COPY pipelines.yaml ./
COPY sql/ sql/
COPY examples/ examples/
COPY migrations/ migrations/
# serve listens on every interface of the container; the pipeline file is the image's.
ENV PULSO_API_BIND=0.0.0.0:8000 \
    PULSO_API_PIPELINE=/app/pipelines.yaml \
    PULSO_LOG=info
EXPOSE 8000
USER 10001:10001
# For `serve` (a `run` container has no server: give it `--no-healthcheck` or ignore the status).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pulso-flow"]
CMD ["--help"]

# --- runtime-prebuilt: a binary built outside the image (CI, or `cargo build --release` here) ----
FROM runtime-base AS runtime-prebuilt
ARG BINARY=target/release/pulso-flow
COPY --chmod=0755 ${BINARY} /usr/local/bin/pulso-flow

# --- runtime (default): the binary of the build stage -------------------------------------------
FROM runtime-base AS runtime
COPY --from=build /out/pulso-flow /usr/local/bin/pulso-flow
