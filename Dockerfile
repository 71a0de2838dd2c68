# One image for every process: `serve` (default), `worker`, `scheduler`, `migrate`.
#   docker build -t tessera .
#   docker run -e TESSERA_DATABASE_URL=... -e TESSERA_SECRET_KEY=... -p 8000:8000 tessera
#   docker run ... tessera worker
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY qualification_tests ./qualification_tests
COPY payouts ./payouts
COPY workers ./workers
COPY migrations ./migrations
RUN pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin tessera
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER tessera
WORKDIR /home/tessera
EXPOSE 8000
ENTRYPOINT ["tessera"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
