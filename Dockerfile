# syntax=docker/dockerfile:1
# Multi-stage: dependencies from uv.lock in a cached layer, code last, non-root at run time.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY bot ./bot
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PATH="/app/.venv/bin:$PATH" TOKENWISE_DATA_DIR=/data PORT=3000
RUN useradd --create-home --uid 10001 tokenwise && mkdir -p /data && chown tokenwise /data
WORKDIR /app
COPY --from=build /app /app
USER tokenwise
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"3000\")}/healthz', timeout=4)"
# Migrations run at start (idempotent); `tokenwise db upgrade` does the same on its own.
CMD ["tokenwise", "run"]
