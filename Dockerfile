# syntax=docker/dockerfile:1
# Perpetuo gateway image: a builder stage installs the locked dependencies and the package
# into a virtual environment with uv; the runtime stage is the same slim base with only that
# environment, running as an unprivileged user. See docs/deployment.md.
#
#   docker build -t perpetuo:0.1.0 .
#   docker run --rm -p 8080:8080 -e PERPETUO_MASTER_KEY=... perpetuo:0.1.0

# Both stages must use the same base: the venv's interpreter is a symlink into it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Byte-compile at build time (the runtime filesystem may be read-only); copy, not hardlink,
# out of uv's cache; use the base image's Python, never a downloaded one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --no-editable

# Then the package itself, as a regular (non-editable) install: the runtime stage has no /src.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="perpetuo" \
      org.opencontainers.image.description="Self-hosted, OpenAI-compatible LLM gateway" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can verify it and volume
# permissions are predictable. The data directory holds only the request-log spill files in
# production; it is created here so a fresh named volume inherits this ownership.
RUN groupadd --system --gid 10001 perpetuo \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin perpetuo \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/perpetuo \
    && install -d -o root -g root -m 0755 /etc/perpetuo

COPY --from=builder /app/.venv /app/.venv

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PERPETUO_DATA_DIR=/var/lib/perpetuo

USER 10001:10001
WORKDIR /var/lib/perpetuo
EXPOSE 8080

# No curl in slim images: the interpreter does the probe. Liveness only: /health/ready turns
# 503 when PostgreSQL, Redis or a provider is down, which says nothing about this container.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=2)"]

# uvicorn handles SIGTERM: stop accepting, finish in-flight requests for up to 30 s, flush.
STOPSIGNAL SIGTERM
ENTRYPOINT ["perpetuo"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
