"""Client channels to the classifier and the backends, one per address, opened on first use.

A reload that moves a backend to a new address opens a channel to it on its first request;
channels to old addresses stay open (idle) until the router stops.

The channels are bare (no interceptors): the router's classify and generate spans are the
CLIENT spans of their calls, and every call passes its timeout and `outgoing_metadata()` (trace
context and baggage) itself (switchyard.runtime.channels explains why).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from switchyard.api.classifier.v1 import classifier_pb2, classifier_pb2_grpc
from switchyard.api.inference.v1 import inference_pb2, inference_pb2_grpc
from switchyard.runtime.channels import open_channel

__all__ = ["Backend", "Classifier", "Connections"]


class Classifier(Protocol):
    """What the router calls to classify: the service's stub, or the in-process classifier."""

    async def Classify(  # noqa: N802 - the stub's method name
        self,
        request: classifier_pb2.ClassifyRequest,
        *,
        timeout: float | None = ...,
        metadata: Sequence[tuple[str, str]] = ...,
    ) -> classifier_pb2.ClassifyResponse: ...


class StreamCall(Protocol):
    """A streaming call as the stub returns it: iterate it for responses; `cancel()` ends it."""

    def __aiter__(self) -> AsyncIterator[inference_pb2.GenerateStreamResponse]: ...

    def cancel(self) -> bool: ...


class Backend(Protocol):
    """What the router calls to generate: a backend service's stub, or the in-process frontier
    proxy (in_process_frontier.py)."""

    async def Generate(  # noqa: N802 - the stub's method name
        self,
        request: inference_pb2.GenerateRequest,
        *,
        timeout: float | None = ...,
        metadata: Sequence[tuple[str, str]] = ...,
    ) -> inference_pb2.GenerateResponse: ...

    def GenerateStream(  # noqa: N802 - the stub's method name
        self,
        request: inference_pb2.GenerateStreamRequest,
        *,
        timeout: float | None = ...,
        metadata: Sequence[tuple[str, str]] = ...,
    ) -> StreamCall: ...


class Connections:
    def __init__(
        self,
        *,
        default_timeout_s: float = 120.0,
        in_process_classifier: Classifier | None = None,
        in_process_backends: Mapping[str, Backend] | None = None,
    ) -> None:
        """`in_process_classifier`: answers every classify call (local_classifier.py);
        `in_process_backends`: by router.yaml backend name, what answers that backend's calls
        instead of its address (in_process_frontier.py)."""
        self._default_timeout_s = default_timeout_s
        self._in_process = in_process_classifier
        self._in_process_backends = dict(in_process_backends or {})
        self._channels: dict[tuple[str, int], object] = {}
        self._classifiers: dict[str, classifier_pb2_grpc.ClassifierServiceStub] = {}
        self._backends: dict[str, inference_pb2_grpc.InferenceServiceStub] = {}

    def _channel(self, address: str, retry_attempts: int):  # type: ignore[no-untyped-def]
        key = (address, retry_attempts)
        channel = self._channels.get(key)
        if channel is None:
            channel = open_channel(
                address,
                default_timeout_s=self._default_timeout_s,
                retry_attempts=retry_attempts,
                max_message_bytes=64 * 1024 * 1024,
                intercepted=False,
            )
            self._channels[key] = channel
        return channel

    def classifier(self, address: str) -> Classifier:
        if self._in_process is not None:
            return self._in_process
        stub = self._classifiers.get(address)
        if stub is None:
            # No retries: the classifier has a tight deadline and the router has a default route.
            stub = classifier_pb2_grpc.ClassifierServiceStub(self._channel(address, 1))
            self._classifiers[address] = stub
        return stub  # type: ignore[return-value]  # the generated stub is untyped

    def backend(self, name: str, address: str) -> Backend:
        """The backend named `name` in router.yaml, at `address` unless it is served in
        process."""
        local = self._in_process_backends.get(name)
        if local is not None:
            return local
        stub = self._backends.get(address)
        if stub is None:
            # gRPC retries UNAVAILABLE only before any response: safe for generation.
            stub = inference_pb2_grpc.InferenceServiceStub(self._channel(address, 2))
            self._backends[address] = stub
        return stub  # type: ignore[no-any-return]  # the generated stub is untyped

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()  # type: ignore[attr-defined]
        self._channels.clear()
        self._classifiers.clear()
        self._backends.clear()
