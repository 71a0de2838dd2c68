# One image for every process: `serve` (default), `worker`, `scheduler`, `migrate`.
#   docker build -t tessera .
#   docker run -v tessera-data:/data -p 8000:8000 tessera          # embedded default (SQLite)
#   docker run -e TESSERA_DATABASE_URL=... -e TESSERA_SECRET_KEY=... -p 8000:8000 tessera
#   docker run --no-healthcheck ... tessera worker
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The locked dependencies first, in a layer of their own: a change to the source reuses it.
COPY requirements.txt ./
RUN pip install --require-hashes --no-deps -r requirements.txt
COPY pyproject.toml README.md ./
COPY app ./app
COPY qualification_tests ./qualification_tests
COPY payouts ./payouts
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-deps . && pip check

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin tessera \
    && mkdir -p /data/uploads && chown -R tessera:tessera /data
COPY --from=build /opt/venv /opt/venv
# The embedded default keeps everything in /data: the SQLite file, its generated secret key
# (tessera.db.secret) and uploads waiting for their import. A new named volume takes the
# directory's owner from the image, so the service user can write to it.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    TESSERA_DATABASE_URL=sqlite:////data/tessera.db TESSERA_UPLOAD_DIR=/data/uploads
VOLUME /data
USER tessera
WORKDIR /data
EXPOSE 8000
# Liveness of `serve` on its default port; worker and scheduler containers serve no HTTP, so run
# them with --no-healthcheck (or a probe of your own).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["tessera"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
