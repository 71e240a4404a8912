"""The checked-in stubs must match proto/: regenerate with `clients/python/generate.sh`.

Compares descriptors, not text, so that the grpcio-tools version that runs this test
(any) need not be the one that generated the stubs (1.62.3, pinned in generate.sh).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parents[3]
PROTO = REPO / "proto"
FILES = ["lethe/v1/types.proto", "lethe/v1/lethe.proto"]
REGENERATE = "the generated stubs differ from proto/: run clients/python/generate.sh and commit the result"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools is in the [test] extra")
    if not PROTO.is_dir():
        pytest.skip("proto/ is not here (an sdist): nothing to compare with")
    out = tmp_path_factory.mktemp("protoc") / "set.pb"
    well_known = resources.files("grpc_tools") / "_proto"
    rc = protoc.main(["protoc", f"-I{PROTO}", f"-I{well_known}", f"--descriptor_set_out={out}", *FILES])
    assert rc == 0, "protoc failed on proto/"
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return {f.name: f for f in fds.file}


def _normalized(f: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Without json_name, which protoc's descriptor set adds and generated code leaves out."""
    f = descriptor_pb2.FileDescriptorProto.FromString(f.SerializeToString())

    def strip(messages: "list[descriptor_pb2.DescriptorProto]") -> None:
        for m in messages:
            for field in [*m.field, *m.extension]:
                field.ClearField("json_name")
            strip(list(m.nested_type))

    strip(list(f.message_type))
    return f


def _checked_in(name: str) -> descriptor_pb2.FileDescriptorProto:
    from lethe.v1 import lethe_pb2, types_pb2

    module = {"lethe/v1/types.proto": types_pb2, "lethe/v1/lethe.proto": lethe_pb2}[name]
    return descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)


@pytest.mark.parametrize("name", FILES)
def test_checked_in_descriptors_match_proto(compiled: dict[str, descriptor_pb2.FileDescriptorProto], name: str) -> None:
    want, have = _normalized(compiled[name]), _normalized(_checked_in(name))
    if want != have:
        missing = sorted({m.name for m in want.message_type} ^ {m.name for m in have.message_type})
        pytest.fail(f"{name}: {REGENERATE} (messages added or removed: {missing or 'none; fields or enums changed'})")


def test_the_grpc_stub_has_every_rpc(compiled: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
    from lethe.v1 import lethe_pb2_grpc

    [service] = compiled["lethe/v1/lethe.proto"].service
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        stub = lethe_pb2_grpc.LetheStub(channel)
        missing = [m.name for m in service.method if not hasattr(stub, m.name)]
    finally:
        channel.close()
    assert not missing, f"{REGENERATE} (rpcs missing from the stub: {missing})"


def test_the_client_covers_every_rpc(compiled: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
    """A new rpc in proto/ needs a method on both clients (snake_case of its name)."""
    import re

    import lethe

    [service] = compiled["lethe/v1/lethe.proto"].service
    for m in service.method:
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", m.name).lower()
        assert hasattr(lethe.Lethe, method), f"Lethe has no {method}() for rpc {m.name}"
        assert hasattr(lethe.AsyncLethe, method), f"AsyncLethe has no {method}() for rpc {m.name}"
