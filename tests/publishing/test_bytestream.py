"""ByteStream's messages as releasekit encodes them, against the protobuf classes BuildGrid's server decodes them with;
the gRPC cache URL, as Bazel takes it; a build with a gRPC cache names its outputs by bytestream:// URIs."""

import pytest

from releasekit.core.errors import ConfigError
from releasekit.publishing.bytestream import channel_target, decode_read_response, encode_read_request
from releasekit.running.build_events import built_outputs

bytestream_pb2 = pytest.importorskip("buildgrid._protos.google.bytestream.bytestream_pb2")


@pytest.mark.parametrize("request_fields", [("blobs/" + "a" * 64 + "/5", 0, 0),
                                            ("main/blobs/" + "b" * 64 + "/3000000", 300, 2 ** 40 + 7)])
def test_a_read_request_is_what_protobuf_decodes(request_fields):
    decoded = bytestream_pb2.ReadRequest.FromString(encode_read_request(request_fields))
    assert (decoded.resource_name, decoded.read_offset, decoded.read_limit) == request_fields


def test_a_read_response_gives_its_data_and_skips_fields_it_does_not_know():
    data = bytes(range(256)) * 1000
    assert decode_read_response(bytestream_pb2.ReadResponse(data=data).SerializeToString()) == data
    assert decode_read_response(b"") == b""
    unknown = b"\x08\x96\x01" + b"\x19" + b"\x00" * 8 + b"\x25" + b"\x00" * 4 + b"\x12\x02hi"
    assert decode_read_response(unknown + bytestream_pb2.ReadResponse(data=b"abc").SerializeToString()) == b"abc"
    with pytest.raises(ValueError):
        decode_read_response(b"\x52\x05ab")  # a length past the message


def test_a_grpc_cache_url_is_read_as_bazel_reads_it():
    assert channel_target("grpc://127.0.0.1:9092") == ("127.0.0.1:9092", False)
    assert channel_target("grpcs://cache.example.com") == ("cache.example.com:443", True)
    assert channel_target("cache.example.com:8980") == ("cache.example.com:8980", True)  # no scheme: TLS
    with pytest.raises(ConfigError):
        channel_target("grpc://")


def test_outputs_a_grpc_cache_holds_are_found_in_the_exec_root():
    events = [
        {"id": {"workspace": {}}, "workspaceInfo": {"localExecRoot": "/ob/execroot/ws"}},
        {"id": {"namedSet": {"id": "0"}}, "namedSetOfFiles": {"files": [
            {"name": "app.ci", "uri": "bytestream://127.0.0.1:1/main/blobs/" + "c" * 64 + "/863",
             "pathPrefix": ["bazel-out", "k8-fastbuild", "bin"]},
            {"name": "app.ci.release.json", "uri": "file:///ob/execroot/ws/bazel-out/k8-fastbuild/bin/app.ci.release.json"}]}},
        {"id": {"targetCompleted": {"label": "//:app.ci"}},
         "completed": {"success": True, "outputGroup": [{"fileSets": [{"id": "0"}]}]}},
    ]
    assert built_outputs(events, ["//:app.ci"]) == {"//:app.ci": {
        "app.ci": "/ob/execroot/ws/bazel-out/k8-fastbuild/bin/app.ci",
        "app.ci.release.json": "/ob/execroot/ws/bazel-out/k8-fastbuild/bin/app.ci.release.json"}}
