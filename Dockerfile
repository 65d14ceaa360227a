# syntax=docker/dockerfile:1
# One image with every selfheal binary; docker-compose.yml runs one service per binary.
#
#   docker build -t selfheal:local .
#   docker run --rm selfheal:local selfheal --help

# ---- build ---------------------------------------------------------------------------
# Edition 2024 and the workspace's rust-version (1.88) need a recent toolchain.
FROM rust:1-bookworm AS builder

# libclang/clang: rocksdb's bindgen; pkg-config + libssl-dev: native-tls (reqwest, the
# registry client); zlib1g-dev: librdkafka's compression. librdkafka itself is built by
# rdkafka-sys with its own configure script (no cmake needed).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libclang-dev clang pkg-config libssl-dev zlib1g-dev make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

ARG SELFHEAL_BINS="selfheal selfheal-collector selfheal-monitor selfheal-diagnoser selfheal-repairer selfheal-rollout selfheal-verifier selfheal-learner"
# The cache mounts keep crates and build output between image builds; the binaries are
# copied out because the target mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    set -eu; \
    packages=""; for b in $SELFHEAL_BINS; do packages="$packages -p $b"; done; \
    cargo build --release --locked $packages; \
    mkdir -p /out; \
    for b in $SELFHEAL_BINS; do cp "target/release/$b" /out/; done

# ---- runtime -------------------------------------------------------------------------
FROM debian:bookworm-slim

# git: the repairer branches and commits, the rollout runs versions from worktrees;
# python3 + python3-venv: the Python services selfheal heals run and are tested here;
# bubblewrap: the sandbox itself; tini: signals reach the binary so SIGTERM gives a clean
# shutdown.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates git python3 python3-venv bubblewrap libssl3 zlib1g tini \
    && rm -rf /var/lib/apt/lists/*

# The interpreter of the example service (OpenTelemetry SDK, pytest): the repairer runs its
# suite with it and the rollout runs its versions with it (SELFHEAL_PYTHON below; both
# replace a leading `python3` of the catalog's commands). Services of your own with other
# packages need an image with those.
COPY examples/pricing-api/requirements.txt /tmp/pricing-api-requirements.txt
RUN python3 -m venv /opt/selfheal/venv \
    && /opt/selfheal/venv/bin/pip install --no-cache-dir -r /tmp/pricing-api-requirements.txt \
    && rm /tmp/pricing-api-requirements.txt

RUN useradd --system --create-home --home-dir /var/lib/selfheal --shell /usr/sbin/nologin selfheal
# The mount point of docker-compose.yml's `repos` volume, owned by the services' user so the
# volume is too.
RUN mkdir -p /srv/selfheal/repos && chown selfheal:selfheal /srv/selfheal/repos

COPY --from=builder /out/ /usr/local/bin/
COPY schemas /usr/share/selfheal/schemas
COPY policies /usr/share/selfheal/policies
# The example service and its traffic generator (docker-compose.yml's demo), and the
# compose catalog and the script that seeds the `repos` volume.
COPY examples /usr/share/selfheal/examples
COPY deploy/compose /usr/share/selfheal/compose

USER selfheal
WORKDIR /var/lib/selfheal

# Inside a container the health/metrics server must listen beyond loopback.
ENV SELFHEAL_HTTP_ADDR=0.0.0.0:9464 \
    SELFHEAL_LOG_JSON=true \
    SELFHEAL_PYTHON=/opt/selfheal/venv/bin/python \
    PATH=/opt/selfheal/venv/bin:$PATH
EXPOSE 9464

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["selfheal", "--help"]
