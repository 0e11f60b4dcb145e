"""The real engine (vLLM's CPU build on SmolLM2-135M-Instruct), started ONCE for these tests.

The service runs in process on port 0 with a small engine: 1024-token window, 1 GiB KV cache,
at most 3 requests in the engine (so the full-queue test needs only three long generations).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from support.vllm_server import prepared_model_dir

from switchyard.api.inference.v1 import inference_pb2_grpc as pb_grpc
from switchyard.local_inference.inference import LocalInference
from switchyard.local_inference.service import build_service
from switchyard.local_inference.settings import LocalInferenceSettings
from switchyard.runtime.server import RunningServer, start_server
from switchyard.runtime.settings import load_settings

USD_PER_HOUR = 3.6  # 0.001 USD a second: easy numbers
MAX_QUEUED = 3
MAX_MODEL_LEN = 1024


@dataclass
class LiveService:
    running: RunningServer[LocalInference]
    channel: grpc.aio.Channel
    stub: pb_grpc.InferenceServiceStub

    @property
    def inference(self) -> LocalInference:
        return self.running.resources


@pytest.fixture(scope="session")
async def live() -> AsyncIterator[LiveService]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings(
        LocalInferenceSettings,
        model=str(prepared_model_dir()),
        served_model_name="SmolLM2-135M-Instruct",
        max_model_len=MAX_MODEL_LEN,
        cpu_kv_cache_gib=1,
        max_num_seqs=8,
        max_queued_requests=MAX_QUEUED,
        usd_per_hour=USD_PER_HOUR,
        health_check_interval_s=0.5,
        grace_period_s=5,
    )
    async with start_server(build_service(settings), port=0) as running:
        async with grpc.aio.insecure_channel(running.address) as channel:
            yield LiveService(running, channel, pb_grpc.InferenceServiceStub(channel))


@pytest.fixture(scope="session")
def hf_tokenizer():  # type: ignore[no-untyped-def]
    """The model's tokenizer loaded by transformers, independently of the engine."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(prepared_model_dir()))
