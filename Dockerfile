# syntax=docker/dockerfile:1.7
# Two images from one file:
#   docker build --target api     -t election-forecasting-api:0.1.0 .      the prediction API (NumPy, Litestar)
#   docker build --target dagster -t election-forecasting-dagster:0.1.0 .  the Dagster code location
# Both run as UID 10001 and carry no compilers, no pip caches and no source tree beyond the installed packages.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS source
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY election_assets ./election_assets
COPY election_api ./election_api

FROM source AS api-build
# Pinned to requirements/api.txt, the versions the tests ran against and the SBOM lists.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --constraint requirements/api.txt ".[api]"
# The API image must stay slim: fail the build if the pipeline stack slipped in through a dependency.
RUN /opt/venv/bin/python -c "import importlib.util as u, sys; \
bad = [m for m in ('dagster', 'mlflow', 'evidently', 'pandas', 'sklearn', 'xgboost') if u.find_spec(m)]; \
sys.exit(f'pipeline packages in the API image: {bad}' if bad else 0)"

FROM source AS dagster-build
# election_assets.definitions loads its defs/ folder through the dg project config ([tool.dg.project] in
# pyproject.toml), which Dagster looks for in the package's parent directories: beside the installed package that is
# site-packages, so the project's pyproject.toml is placed there (without it the code location does not load).
RUN python -m venv /opt/venv && /opt/venv/bin/pip install ".[pipeline]" \
    && cp pyproject.toml "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/"

FROM ${PYTHON_IMAGE} AS runtime
# The user's home is /tmp, the path every pod mounts writable (an emptyDir) over its read-only root filesystem: what
# tools keep under ~ lands there, e.g. Dagster's user-level telemetry id (~/.dagster/.telemetry, never under
# DAGSTER_HOME) whenever the instance in DAGSTER_HOME leaves telemetry on, as an empty DAGSTER_HOME does, and
# matplotlib's and MLflow's caches. HOME is also set below, for runtimes that do not take it from /etc/passwd.
RUN groupadd --gid 10001 election \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin election
# The paths the manifests mount: the model-store claim at /models holds the synthetic champion at its root and the
# real-mode model under /models/real (written by the dagster target's run pods, read by the api target in either
# ELECTION_API_MODE), the reports claim at /reports. Both targets run with a read-only root filesystem on Kubernetes.
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp \
    ELECTION_DATA_DIR=/data ELECTION_MODEL_STORE=/models ELECTION_REAL_MODEL_STORE=/models/real \
    ELECTION_REPORTS_DIR=/reports

FROM runtime AS api
COPY --from=api-build /opt/venv /opt/venv
ENV HOST=0.0.0.0 PORT=8000
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "election_api"]

FROM runtime AS dagster
COPY --from=dagster-build /opt/venv /opt/venv
COPY workspace.yaml /opt/dagster/app/
COPY instance /opt/dagster/app/instance
ENV DAGSTER_HOME=/opt/dagster/dagster_home
RUN mkdir -p /opt/dagster/dagster_home /data /models /reports \
    && chown 10001:10001 /opt/dagster/dagster_home /data /models /reports
WORKDIR /opt/dagster/app
USER 10001:10001
EXPOSE 3030
# The Helm chart's user-code deployment runs this gRPC server; run pods reuse the image with `dagster api execute_run`.
CMD ["dagster", "code-server", "start", "-m", "election_assets.definitions", "-a", "defs", "-h", "0.0.0.0", "-p", "3030"]
