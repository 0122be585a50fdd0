# bullpen: build with the same command as the README (`cargo build --release`, whose build
# script fetches the pinned ONNX Runtime library from the PyPI wheel with pip), then copy the
# binary, the library, the config, the model and the data into a small non-root image.
#
#   docker build -t bullpen .
#   docker run -p 8080:8080 bullpen
#
# Probes: GET /health (liveness) and GET /ready (readiness) on port 8080. Without Docker,
# scripts/image assembles the same layout with buildah.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && test -f target/release/libonnxruntime.so.1.31.1 \
 && strip --strip-debug target/release/bullpen

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /app bullpen \
 && mkdir -p /var/lib/bullpen/results \
 && chown -R bullpen /var/lib/bullpen
WORKDIR /app
COPY --from=build /src/target/release/bullpen /src/target/release/libonnxruntime.so.1.31.1 /app/
COPY config /app/config
COPY models /app/models
COPY data/retrosheet /app/data/retrosheet
COPY data/pitchers /app/data/pitchers
# The local profile, so `docker run` serves at once (and warns that auth is off). Deployments
# set BULLPEN_ENV=production, which refuses to start until auth is configured (README).
# Results posted with the embedded store are journaled here: keep it on a volume.
ENV BULLPEN__TELEMETRY__FORMAT=json \
    BULLPEN__SERVER__HOST=0.0.0.0 \
    BULLPEN__SERVER__PORT=8080 \
    BULLPEN__FEATURES__RESULTS_DIR=/var/lib/bullpen/results
VOLUME /var/lib/bullpen
EXPOSE 8080 8081
USER bullpen
# `bullpen probe` GETs /ready on server.port (the image has no curl). On SIGTERM the server
# drains for server.drain_secs (5 s), then finishes requests in flight: `docker stop`'s 10 s
# default covers both.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/app/bullpen", "probe", "--path", "/ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/bullpen"]
CMD ["serve"]
