"""Malformed and hostile request bytes for any gRPC method, as hypothesis strategies.

`request_bytes(RequestType)` draws one of:
- arbitrary bytes (mostly not protobuf at all);
- a well-formed message of the type with wild values: NaN, infinities, -0.0, extreme integers,
  unknown enum numbers, empty / very long / NUL-filled strings, long repeated fields, nested
  messages (built from the message's descriptor, so every field of every request is reached);
- a well-formed message with plausible values (short text, names the services know, small
  numbers, known enum values), so calls also get past validation into the services' work;
- a valid request of the method (`template`) with one field, anywhere in it, set to a wild
  value, so validation and the work behind it meet one bad value at a time;
- that message with its bytes damaged: truncated, a byte flipped, an unknown field or a field
  with the wrong wire type appended, or every string field drawn as `MARKER` turned into
  invalid UTF-8 of the same length (lengths stay right: only the decoder's UTF-8 check fails).

`call(channel, method, data)` sends the bytes through a generic channel call (no serializer) and
returns the status code, reading a server stream to its end.
"""

from __future__ import annotations

import math
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["MARKER", "call", "fuzz_settings", "request_bytes"]


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings for the fuzz tests: the same cases on every run (derandomized, no
    example database), no per-example deadline (a service call takes what it takes)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


MARKER = "ZZUTF8ZZ"
_BAD_UTF8 = b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xff"  # same length as MARKER, never valid UTF-8
assert len(MARKER.encode()) == len(_BAD_UTF8)

_FLOATS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e308, 5e-324, 2.5]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_F32 = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 3.4e38, -3.4e38, 0.7, 2.5]),
    st.floats(width=32, allow_nan=True, allow_infinity=True),
)
_STRINGS = st.one_of(
    st.text(max_size=24),
    st.sampled_from(
        [
            "",
            MARKER,
            f"hello {MARKER}",
            "\x00" * 64,
            "x" * 300_000,  # beyond every prompt limit
            "é" * 60_000,
            "local-general",
            "gpt-4o",
            "SmolLM2-135M-Instruct",
            "COST_GROUPING_MODEL",
        ]
    ),
)
_INTS: dict[int, Any] = {
    FieldDescriptor.TYPE_INT32: st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 7]),
    FieldDescriptor.TYPE_SINT32: st.sampled_from([0, -1, 2**31 - 1, -(2**31)]),
    FieldDescriptor.TYPE_SFIXED32: st.sampled_from([0, -1, 2**31 - 1, -(2**31)]),
    FieldDescriptor.TYPE_INT64: st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 253402300800]),
    FieldDescriptor.TYPE_SINT64: st.sampled_from([0, -1, 2**63 - 1, -(2**63)]),
    FieldDescriptor.TYPE_SFIXED64: st.sampled_from([0, -1, 2**63 - 1, -(2**63)]),
    FieldDescriptor.TYPE_UINT32: st.sampled_from([0, 1, 8, 2**32 - 1, 2**31]),
    FieldDescriptor.TYPE_FIXED32: st.sampled_from([0, 1, 2**32 - 1]),
    FieldDescriptor.TYPE_UINT64: st.sampled_from([0, 1, 2**64 - 1, 2**63]),
    FieldDescriptor.TYPE_FIXED64: st.sampled_from([0, 1, 2**64 - 1]),
}


_SHORT_STRINGS = st.one_of(st.text(max_size=6), st.just(MARKER))
_PLAUSIBLE_STRINGS = st.one_of(
    st.sampled_from(
        [
            "Say hi.",
            "CHAT 0.2 hello there",
            "Prove that there are infinitely many primes.",
            "gpt-4o",
            "claude-haiku-4-5",
            "local-general",
            "frontier-general",
            "SmolLM2-135M-Instruct",
        ]
    ),
    st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=16),
)


def _plausible(field: FieldDescriptor) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _PLAUSIBLE_STRINGS
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=8)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, 0.3, 0.7, 1.0])
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    return st.integers(0, 16)


def _scalar(field: FieldDescriptor, small: bool, plausible: bool = False) -> Any:
    kind = field.type
    if plausible:
        return _plausible(field)
    if kind == FieldDescriptor.TYPE_STRING:
        return _SHORT_STRINGS if small else _STRINGS
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=32)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _FLOATS
    if kind == FieldDescriptor.TYPE_FLOAT:
        return _F32
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 40))  # open enums
    return _INTS[kind]


@st.composite
def _message(
    draw: Any, descriptor: Descriptor, depth: int, small: bool = False, plausible: bool = False
) -> Message:
    """A message of `descriptor` with wild (or `plausible`) values; `small`: short strings only
    (inside a long repeated field, so a request stays a few MB at most)."""
    message = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        repeated = field.is_repeated
        counts = st.integers(1, 2) if plausible else st.one_of(st.integers(0, 3), st.just(300))
        count = draw(counts) if repeated else 1
        inner_small = small or count > 3
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry or depth <= 0:
                continue
            container = getattr(message, field.name)
            for _ in range(count):
                value = draw(_message(field.message_type, depth - 1, inner_small, plausible))
                if repeated:
                    container.add().CopyFrom(value)
                else:
                    container.CopyFrom(value)
                    container.SetInParent()
            continue
        if repeated:
            values = st.lists(
                _scalar(field, inner_small, plausible), min_size=count, max_size=count
            )
            getattr(message, field.name).extend(draw(values))
        else:
            setattr(message, field.name, draw(_scalar(field, small, plausible)))
    return message


def _damage(data: bytes, how: int, where: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    at = where % len(data)
    if how == 0:
        return data[:at]  # truncated
    if how == 1:
        return data[:at] + bytes([data[at] ^ (byte or 0x80)]) + data[at + 1 :]  # a byte flipped
    if how == 2:
        return data + b"\xf8\xff\xff\xff\x0f\x01"  # an unknown field number 2^28-1, varint
    if how == 3:
        return data + b"\x0d\x01\x02"  # field 1 as a truncated fixed32 (wrong wire type)
    return data + bytes([0x0A, 0x80, 0x80, 0x80, 0x80, 0x08])  # a length beyond the end


def _scalar_paths(descriptor: Descriptor, depth: int = 3) -> list[tuple[FieldDescriptor, ...]]:
    """Every scalar field reachable from `descriptor`, as the chain of fields leading to it."""
    paths: list[tuple[FieldDescriptor, ...]] = []
    for field in descriptor.fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            paths.append((field,))
        elif depth > 0 and not field.message_type.GetOptions().map_entry:
            paths += [(field, *rest) for rest in _scalar_paths(field.message_type, depth - 1)]
    return paths


def _with_value(template: Message, path: tuple[FieldDescriptor, ...], value: Any) -> Message:
    message = type(template)()
    message.CopyFrom(template)
    target: Any = message
    for field in path[:-1]:
        container = getattr(target, field.name)
        if field.is_repeated:
            target = container[0] if len(container) else container.add()
        else:
            target = container
    last = path[-1]
    if last.is_repeated:
        getattr(target, last.name).append(value)
    else:
        setattr(target, last.name, value)
    return message


def _one_wild_field(template: Message) -> Any:
    paths = _scalar_paths(template.DESCRIPTOR)
    if not paths:  # a request with no fields (ListModels): only its bytes can be wrong
        return st.just(template)
    return st.sampled_from(paths).flatmap(
        lambda path: _scalar(path[-1], small=False).map(
            lambda value: _with_value(template, path, value)
        )
    )


def request_bytes(cls: type[Message], template: Message | None = None) -> Any:
    """A strategy of request bytes for messages of type `cls` (see the module docstring);
    `template` is a valid request of the method (default: an empty message)."""
    messages = _message(cls.DESCRIPTOR, 3)
    plausible = _message(cls.DESCRIPTOR, 3, plausible=True)
    one_wild = _one_wild_field(template if template is not None else cls())

    def serialized(message: Message) -> bytes:
        return message.SerializeToString().replace(MARKER.encode(), _BAD_UTF8)

    return st.one_of(
        st.binary(max_size=200),
        messages.map(serialized),
        plausible.map(serialized),
        one_wild.map(serialized),
        one_wild.map(serialized),
        st.builds(
            _damage,
            messages.map(serialized),
            st.integers(0, 4),
            st.integers(0, 10_000),
            st.integers(0, 255),
        ),
    )


async def call(
    channel: grpc.aio.Channel,
    method: str,
    data: bytes,
    *,
    stream: bool = False,
    metadata: tuple[tuple[str, str], ...] = (),
    timeout: float = 30.0,
) -> grpc.StatusCode:
    """Send `data` as the request of `method`; the call's status code."""
    try:
        if stream:
            async for _ in channel.unary_stream(method)(data, metadata=metadata, timeout=timeout):
                pass
        else:
            await channel.unary_unary(method)(data, metadata=metadata, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK
