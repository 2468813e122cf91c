# First version (the deployment issue makes it multi-stage and non-root).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY twin twin
COPY adapters adapters
COPY sims sims
COPY plants plants
RUN pip install --no-cache-dir .
ENTRYPOINT []
CMD ["twin", "up", "--no-view"]
