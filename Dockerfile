# streaming-service in one container: supervisord and the five actors, plus (with no
# DATABASE_URL and no Schwab credentials) its own Postgres and the Schwab simulator, as
# `make run` does. Everything kept is under the volume. Settings come from /app/.env (mount
# yours read-only there: docker-compose.yml does) or -e, never --env-file, which reads a
# .env another way. The entry point starts as root only to read that file, which stays
# chmod 600 and its owner's on the host, then runs everything as `streaming` (uid 10001).
# See README.md, "Container".
FROM python:3.11-slim-bookworm

# PostgreSQL's server binaries for the embedded default; no cluster of the OS's own.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/streaming-service.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/*

# initdb refuses root, and the service needs nothing of root's.
RUN useradd --system --create-home --uid 10001 streaming \
 && mkdir -p /app /var/lib/streaming && chown streaming:streaming /app /var/lib/streaming
USER streaming
WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    STREAMING_VAR=/var/lib/streaming

# The hash-locked dependencies first: a code change does not reinstall them.
COPY --chown=streaming:streaming pyproject.toml requirements.lock requirements-bootstrap.lock README.md ./
COPY --chown=streaming:streaming deploy deploy
COPY --chown=streaming:streaming actors actors
COPY --chown=streaming:streaming common common
RUN bash deploy/host.sh venv requirements.lock
COPY --chown=streaming:streaming sql sql
COPY --chown=streaming:streaming supervisord.conf ./

VOLUME /var/lib/streaming
# /metrics, /healthz and the status page. They listen on the container's own loopback, where no
# `-p` reaches them, unless METRICS_HTTP_HOST=0.0.0.0 with ALLOW_PUBLIC_BIND=true and
# STATUS_PAGE_TOKEN (docker-compose.yml sets the first two and asks for the token); then publish
# on the host's loopback only (-p 127.0.0.1:9108:9108).
EXPOSE 9108
# common/environment.py reads /app/.env as root, then becomes this user for good.
USER root
ENV STREAMING_USER=streaming
# /healthz answers 200 while every actor runs and reports, 503 otherwise (urlopen raises on it).
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["/app/deploy/supervisord-env.sh", "python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('METRICS_HTTP_PORT', '9108') + '/healthz', timeout=8)"]
ENTRYPOINT ["/app/deploy/supervisord-env.sh"]
CMD ["bash", "deploy/container.sh"]
