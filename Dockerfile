# One image for every service of the twin: `twin run state|sink|forecast`, `twin sim`, `twin replay`,
# `twin adapter dcgm|modbus|opcua`, and `twin up` (the default command). See README, Deploy.
#   docker build -t stargate-twin .
# Where no registry image can be pulled (an air-gapped plant network, the project's test machines), build on
# a Debian base made from Debian's packages (scripts/podman-base) and keep the healthcheck (docker format):
#   podman build --format docker --build-arg BASE_IMAGE=localhost/twin-base:bookworm -t stargate-twin .
# The base must give `python` 3.11+ with venv. Python packages come from deploy/requirements.lock only
# (exact versions and hashes; scripts/lock rewrites it), so two builds of one commit install the same code.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: the runtime's virtual environment, from the lock file (hashes checked) and the twin's wheel
FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY deploy/requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY twin twin
COPY adapters adapters
COPY sims sims
# The twin itself without its dependencies (they are all in the lock: pip check fails the build if not);
# then pip leaves the venv.
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y pip setuptools wheel \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

# ---- runtime: slim Python, the venv, the plant files; no compiler, no pip, not root
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TWIN_DATA_DIR=/data \
    TWIN_HEALTH_SERVICE=state
RUN groupadd --system --gid 10001 twin \
 && useradd --system --uid 10001 --gid twin --home-dir /app --no-create-home --shell /usr/sbin/nologin twin \
 && mkdir -p /data \
 && chown twin:twin /data \
 && pip uninstall -y pip setuptools wheel 2>/dev/null; true
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Plant files ship inside the twin package (twin/plants) and scenarios inside sims; a plant file of
# your own can be mounted and passed with --plant, or put in ./plants (/app/plants).
COPY deploy/adapters deploy/adapters
USER twin:twin
VOLUME ["/data"]
# Healthy while the service's retained health topic says `online` (twin/commands/health.py): the
# broker turns it to `offline` (the MQTT will) when the service's connection dies or it hangs.
# TWIN_HEALTH_SERVICE names the service (state for `twin up`; compose sets it per service).
# (`python -m twin.commands.health` is `twin health` without importing the other subcommands.)
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 CMD ["python", "-m", "twin.commands.health"]
ENTRYPOINT []
CMD ["twin", "up", "--no-view"]
