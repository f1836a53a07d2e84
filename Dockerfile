# ComfyCord: the Discord bot (the default command) or `comfycord serve`, as a non-root user.
# Build: docker build -t comfycord .   Run: docs/deploy.md (with docker-compose.yml: ComfyUI too).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN useradd --no-log-init --create-home --uid 10001 --user-group comfycord

# Runtime dependencies only: the package without its dev extra.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot/ bot/
COPY cogs/ cogs/
RUN pip install --no-cache-dir .

# The journal (SQLite) and the workflows live on volumes; the shipped workflows seed a new one.
COPY --chown=comfycord:comfycord workflows/ /workflows/
RUN mkdir /data && chown comfycord:comfycord /data
ENV WORKFLOWS_DIR=/workflows \
    DATABASE_PATH=/data/comfycord.db \
    OUTPUT_DIR=/data/outputs \
    METRICS_PORT=9100 \
    LOG_FORMAT=json
VOLUME ["/data", "/workflows"]

USER 10001:10001
WORKDIR /data
# /health on METRICS_PORT: the gateway is connected and a ComfyUI server is up.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["comfycord", "health"]
# Ctrl+C for the process: it closes the gateway, ComfyUI sockets and journal in order.
STOPSIGNAL SIGINT
CMD ["comfycord", "bot"]
