# CrabCache container image, Debian 12 based (multi-stage: build, then a slim runtime).
#
#   docker build -t crabcache .
#   docker run --rm -p 8000:8000 -p 6379:6379 -p 9090:9090 -e CRABCACHE_AUTH_TOKEN=change-me -v crabdata:/var/lib/crabcache crabcache
#   crabcache-cli -a change-me PING ; redis-cli -a change-me PING
#
# Inside a container the server must listen on all interfaces (bind 0.0.0.0) to be
# reachable through published ports, and a client coming through a published port is
# not loopback: protected mode (a non-loopback bind without a token) would refuse it
# with "DENIED ... protected mode". So the example sets a token (CRABCACHE_AUTH_TOKEN;
# clients AUTH with it). On a trusted network only, CRABCACHE_PROTECTED_MODE=false
# serves clients without one. /health stays open for the HEALTHCHECK.
#
# No Docker engine runs on the project's machines. What is checked instead
# (docs/operations.md, "Container image"): tests/integration/test_packaging.py builds
# the build stage's COPY set with its RUN commands, checks every package named below
# exists in Debian 12 and that the runtime stage carries every library the binary
# links, and runs the binary with this file's ENV and CMD and the example's token
# (protected mode refuses a non-loopback client without it); scripts/dockerfile-chroot
# runs every step of this file in a fresh Debian 12 tree made by debootstrap.

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake make gcc libc6-dev pkg-config \
        libuv1-dev libxxhash-dev libjemalloc-dev libssl-dev libmicrohttpd-dev libsystemd-dev libraft-dev \
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
        libuv1 libxxhash0 libjemalloc2 libssl3 libmicrohttpd12 libsystemd0 libraft2 ca-certificates \
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
