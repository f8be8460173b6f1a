# syntax=docker/dockerfile:1
# routewatch serve in a container: Prometheus /metrics and /healthz on port 9465.
#
#   docker build -t routewatch .
#   docker run -d --name routewatch -p 9465:9465 \
#     -v "$PWD/my.yaml:/etc/routewatch/routewatch.yaml:ro" routewatch
#   docker kill --signal=HUP routewatch     # reload the edited configuration
#
# The configuration is read from /etc/routewatch/routewatch.yaml (mount it; the image has none).
# Any other command: docker run --rm -v ...:/etc/routewatch/routewatch.yaml:ro routewatch \
#   check --config /etc/routewatch/routewatch.yaml
ARG PYTHON_VERSION=3.12

# --- build: one wheel for routewatch and one for every dependency, AWS extra included ----------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY probes ./probes
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[aws]"

# --- runtime: the wheels installed into a slim Python, run as an unprivileged user ------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# versions are the ones the build stage resolved: the wheelhouse holds exactly one of each
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels "routewatch[aws]" \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/routewatch \
       --shell /usr/sbin/nologin routewatch \
    && mkdir -p /etc/routewatch
# HOME holds the ip-ranges cache (~/.cache/routewatch)
WORKDIR /var/lib/routewatch
USER 10001:10001
EXPOSE 9465
# 200 while rounds finish, 503 once none has for three intervals (or the server is gone)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9465/healthz', timeout=4)"]
ENTRYPOINT ["routewatch"]
CMD ["serve", "--config", "/etc/routewatch/routewatch.yaml", "--listen", "0.0.0.0:9465", "--log-format", "json"]
