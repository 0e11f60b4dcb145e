# syntax=docker/dockerfile:1.7
# The router: policy, budgets, fallbacks, cost ledger (SQLite or PostgreSQL). No onnxruntime, no vLLM.
#
#   docker build -f deploy/docker/router.Dockerfile -t switchyard/router:0.1.0 .
#
# Build context: the repository root. Two stages: `build` installs the service's locked
# requirements (services/router/requirements.lock, --require-hashes), then switchyard-api,
# switchyard-runtime and switchyard-router (--no-deps) into a virtual environment; the runtime
# stage copies that environment onto a clean slim image and runs as an unprivileged user.
# tests/deploy/ runs this file's install steps in a clean virtual environment and checks exactly
# what is in it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/switchyard
WORKDIR /src
# First the locked, hash-checked requirements (their own layer, rebuilt only when the lock
# changes; `python scripts/lock.py` regenerates it), then the distributions this service is made
# of, without dependencies: the stubs, the shared runtime and itself, built by the locked build
# backend. `pip check` stops the build if the lock and the distributions disagree.
COPY services/router/requirements.lock ./services/router/requirements.lock
RUN /opt/switchyard/bin/pip install --require-hashes -r ./services/router/requirements.lock
COPY services/api ./services/api
COPY services/runtime ./services/runtime
COPY services/router ./services/router
RUN /opt/switchyard/bin/pip install --no-deps --no-build-isolation \
      ./services/api ./services/runtime ./services/router \
 && /opt/switchyard/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 switchyard \
 && useradd --system --uid 10001 --gid switchyard --create-home --home-dir /home/switchyard switchyard \
 && install -d -o switchyard -g switchyard /var/lib/switchyard
# /var/lib/switchyard holds the SQLite ledger when one is used (a volume in docker-compose) and
# the ledger journal (every record fsynced there before its answer; replayed at start).
COPY --from=build /opt/switchyard /opt/switchyard
COPY --chmod=0755 deploy/docker/grpc_health_probe.py /opt/switchyard/bin/grpc-health-probe
ENV PATH=/opt/switchyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SWITCHYARD_ROUTER_HOST=0.0.0.0 \
    SWITCHYARD_ROUTER_PORT=50051 \
    SWITCHYARD_ROUTER_LEDGER_JOURNAL_DIR=/var/lib/switchyard/ledger-journal
USER 10001:10001
VOLUME ["/var/lib/switchyard"]
WORKDIR /home/switchyard
EXPOSE 50051
# the OpenAI-compatible HTTP door
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["grpc-health-probe", "--address", "127.0.0.1:50051"]
ENTRYPOINT ["switchyard-router"]
