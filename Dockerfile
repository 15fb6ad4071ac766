# The gateway API process. It keeps no state of its own (everything that matters is in
# PostgreSQL), so any number of containers from this image can run behind a load balancer.
# See docs/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid, so that orchestrators that check "runAsNonRoot" can verify it.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin gateway

# Build from a scratch directory and delete it afterwards, so that only the installed package
# (not a second copy of the source) is importable at run time.
WORKDIR /src
COPY pyproject.toml ./
COPY gateway ./gateway
RUN pip install . && cd / && rm -rf /src

WORKDIR /app
# FHIR conformance resources (StructureDefinitions, ValueSets, ...) live beside the package in
# the repository; keep them at the same relative place for the running process.
COPY profiles ./profiles
# GATEWAY_DATA_DIR defaults to ./var; it must be writable by the unprivileged user.
RUN mkdir -p /app/var && chown gateway:gateway /app/var

USER 10001:10001

EXPOSE 8080

# python:3.11-slim has no curl: use the standard library. urlopen raises (exit 1) on a refused
# connection, a timeout or any non-2xx answer.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Exec form: the gateway is PID 1 and receives SIGTERM directly, so it shuts down cleanly.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
