# One image for every service of the twin: `twin run state|sink|forecast`, `twin sim`, `twin replay`,
# `twin adapter dcgm|modbus|opcua`, and `twin up` (the default command). See README, Deploy.
#   docker build -t stargate-twin .

# ---- builder: wheels for the twin and its dependencies (compilers stay in this stage)
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY twin twin
COPY adapters adapters
COPY sims sims
RUN pip wheel --wheel-dir /wheels ".[adapters,forecast]"
# The runtime's virtual environment, installed from those wheels only; pip itself is left out.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels "stargate-twin[adapters,forecast]" \
 && /opt/venv/bin/pip uninstall -y pip setuptools wheel \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

# ---- runtime: slim Python, the venv, the plant files; no compiler, no pip, not root
FROM python:3.11-slim AS runtime
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
