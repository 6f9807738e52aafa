"""What the client is made of, without the service: a method for every RPC
of the proto, each with a signature and a docstring; what every call sends
(timeout, key, traceparent), seen by a gRPC server in this process; the
stubs' generator pinned in one version; the README's Python compiling."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

import ecoms_accounts
from ecoms_accounts import AccountClient, pb
from ecoms_accounts._proto.account.v1 import account_pb2_grpc as pb_grpc

from service import REPO

CLIENT_DIR = Path(__file__).resolve().parents[1]


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_rpc_has_a_typed_documented_method() -> None:
    service = pb.DESCRIPTOR.services_by_name["AccountService"]
    assert len(service.methods) >= 28
    for rpc in service.methods:
        method = getattr(AccountClient, snake_case(rpc.name), None)
        assert method is not None, f"AccountClient lacks {snake_case(rpc.name)} for {rpc.name}"
        assert method.__doc__ and rpc.name in method.__doc__, rpc.name
        signature = inspect.signature(method)
        assert signature.return_annotation is not inspect.Signature.empty, rpc.name
        parameters = list(signature.parameters.values())[1:]
        assert parameters, rpc.name
        for parameter in parameters:
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (rpc.name, parameter.name)
            assert parameter.annotation is not inspect.Parameter.empty, (rpc.name, parameter.name)
        # Every field of the request can be given (ClientInfo's through its
        # own fields; a oneof's through its members).
        names = set(signature.parameters)
        for field in rpc.input_type.fields:
            if field.message_type is not None and field.message_type.name == "ClientInfo":
                assert {"user_agent", "ip_address"} <= names, rpc.name
            elif field.message_type is not None and field.message_type.name == "EmailCode":
                assert {"email", "code"} <= names, rpc.name
            elif rpc.name == "SetProfileImage":
                assert {"account_id", "data"} <= names
            else:
                assert field.name in names, (rpc.name, field.name)


def test_the_package_is_typed() -> None:
    assert (Path(ecoms_accounts.__file__).parent / "py.typed").is_file()


def test_generator_pin_matches_the_dev_extra() -> None:
    generate = (CLIENT_DIR / "generate.py").read_text()
    pinned = re.search(r'GRPCIO_TOOLS_VERSION = "([^"]+)"', generate)
    assert pinned
    project = (CLIENT_DIR / "pyproject.toml").read_text()
    assert f'"grpcio-tools=={pinned.group(1)}"' in project
    assert f'"grpcio>={pinned.group(1)}"' in project


def test_the_readme_python_compiles() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python and Django", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        compile(block, "README.md", "exec")


class _Recorder(pb_grpc.AccountServiceServicer):
    """Answers GetAccount with an empty account, keeping what it was sent."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []
        self.deadlines: list[float | None] = []

    def GetAccount(self, request: Any, context: grpc.ServicerContext) -> pb.GetAccountResponse:
        self.metadata.append({k: v for k, v in context.invocation_metadata()})
        self.deadlines.append(context.time_remaining())
        return pb.GetAccountResponse(account=pb.Account(id=request.id))


@pytest.fixture
def recorder() -> Iterator[tuple[_Recorder, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    recorder = _Recorder()
    pb_grpc.add_AccountServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield recorder, f"127.0.0.1:{port}"
    server.stop(None)


def test_every_call_sends_the_key_the_metadata_and_a_deadline(
    recorder: tuple[_Recorder, str],
) -> None:
    seen, target = recorder
    with AccountClient(target, api_key="acs_key", timeout=7, metadata=[("X-Shop", "eu")]) as client:
        assert client.get_account(id="an-id").account.id == "an-id"
    (metadata,) = seen.metadata
    assert metadata["authorization"] == "Bearer acs_key"
    assert metadata["x-shop"] == "eu"
    assert "traceparent" not in metadata  # no span is active
    (deadline,) = seen.deadlines
    # The wire format rounds the timeout up a little.
    assert deadline is not None and 5 < deadline <= 7.5


def test_an_active_span_is_propagated(recorder: tuple[_Recorder, str]) -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    seen, target = recorder
    context = trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    with AccountClient(target) as client:
        with trace.use_span(trace.NonRecordingSpan(context)):
            client.get_account(id="an-id")
        client.get_account(id="an-id")
    inside, after = seen.metadata
    assert inside["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert "traceparent" not in after
    assert "authorization" not in inside
