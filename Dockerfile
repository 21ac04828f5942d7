# Production image: the same processes as the Procfile, run by non-root.
FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    OMS_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    WEB_BIND=0.0.0.0 \
    PORT=8000
RUN groupadd --system oms && useradd --system --gid oms --home /app oms
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=oms:oms . .
# collectstatic needs no database or secrets: it only copies and fingerprints files.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R oms:oms /app/var /app/staticfiles
USER oms
EXPOSE 8000
CMD ["sh", "-c", "uvicorn config.asgi:application --host ${WEB_BIND} --port ${PORT} --workers ${WEB_CONCURRENCY:-3}"]
