# syntax=docker/dockerfile:1
# The loyalty-streams image: one image for every process (worker, topics/programmes job,
# generator, pms-webhook, redis-mirror); the command picks which (ENTRYPOINT is the CLI).
#
#   docker build -t loyalty-streams:local .
#   docker run --rm -e LOYALTY_BOOTSTRAP_SERVERS=kafka:9092 loyalty-streams:local worker
#
# Every dependency installs from a manylinux wheel (librdkafka, RocksDB, pydantic-core, orjson
# ship compiled), so the build stage needs no compiler. See deploy/README.md.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pyproject.toml names README.md as the package's readme: the build needs it
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="loyalty-streams" \
      org.opencontainers.image.description="Loyalty points and VIP levels as a Kafka stream processor" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOYALTY_WEB_HOST=0.0.0.0 \
    LOYALTY_WEB_PORT=6066 \
    LOYALTY_DATA_DIR=/var/lib/loyalty-streams \
    LOYALTY_TOPICS_DIR=/app/topics
RUN groupadd --system --gid 10001 loyalty \
    && useradd --system --uid 10001 --gid loyalty --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin loyalty \
    && mkdir -p /var/lib/loyalty-streams \
    && chown loyalty:loyalty /var/lib/loyalty-streams
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# the topic declarations `loyalty-streams topics apply` reads (LOYALTY_TOPICS_DIR)
COPY topics ./topics
USER 10001:10001
# the worker's HTTP views: lookups, /metrics, /health
EXPOSE 6066
ENTRYPOINT ["loyalty-streams"]
CMD ["worker"]
