# CrabCache container image, Debian 12 based (multi-stage: build, then a slim runtime).
#
#   docker build -t crabcache .
#   docker run --rm -p 8000:8000 -p 6379:6379 -p 9090:9090 -v crabdata:/var/lib/crabcache crabcache
#
# NOTE: this file has not been built on the project's development machines: they have no
# container runtime and no network access to a registry of base images. What it does
# build on is exactly the Debian 12 package set that scripts/deps.sh installs and that
# every test runs on, with the same CMake build as `make`; see docs/operations.md.
#
# Inside a container the server must listen on all interfaces (bind 0.0.0.0) to be
# reachable through published ports; protected mode then serves loopback clients only
# until an auth token is set, so pass one (CRABCACHE_AUTH_TOKEN) or, on a trusted
# network only, CRABCACHE_PROTECTED_MODE=false.

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake make gcc libc6-dev pkg-config \
        libuv1-dev libxxhash-dev libjemalloc-dev libssl-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
COPY tools ./tools
COPY tests ./tests
COPY config ./config
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTS=OFF -DBIN_DIR=/out \
 && cmake --build /build -j"$(nproc)" \
 && /out/crabcache --version

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libuv1 libxxhash0 libjemalloc2 libssl3 libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/crabcache --shell /usr/sbin/nologin crabcache \
 && install -d -o crabcache -g crabcache -m 0750 /var/lib/crabcache /etc/crabcache
COPY --from=build /out/crabcache /out/crabcache-cli /out/crabcache-bench /usr/local/bin/
COPY --from=build /src/config/default.toml /etc/crabcache/crabcache.toml
USER crabcache
WORKDIR /var/lib/crabcache
ENV CRABCACHE_BIND=0.0.0.0 \
    CRABCACHE_WAL_DIR=/var/lib/crabcache/wal
VOLUME ["/var/lib/crabcache"]
EXPOSE 8000 6379 9090
# /health answers 200 {"status":"healthy",...} only while the server serves clients.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/crabcache"]
CMD ["--config", "/etc/crabcache/crabcache.toml"]
