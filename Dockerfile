# One image for every process of the deployment (docker-compose.yml): web (uvicorn), worker
# and beat (Celery), and the one-shot migrations. Runs as an unprivileged user; uploads live
# in /data/media (a volume), static files are collected, hashed and compressed at build.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so a change to the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
ENV STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/data/media \
    PORT=8000
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0

RUN useradd --system --uid 10001 --gid 0 --home-dir /app --shell /usr/sbin/nologin porchlight \
    && mkdir -p /data/media \
    && chown porchlight:0 /data/media
USER porchlight

EXPOSE 8000
CMD ["deploy/web.sh"]
