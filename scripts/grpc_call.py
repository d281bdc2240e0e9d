#!/usr/bin/env python3
"""Calls one method of akidb-server's gRPC API the way grpcurl does: the service's description
comes from the server's reflection, the request is proto3 JSON, the answers print as JSON.

    pip install grpcio grpcio-reflection protobuf
    python3 scripts/grpc_call.py [--key KEY] [--tls CA.pem] ADDR SERVICE/METHOD [JSON]

    python3 scripts/grpc_call.py --key "$AKIDB_KEY" 127.0.0.1:8080 akidb.v1.AkiDb/Query \
        '{"collection": "logs", "text": "robot stuck at the dock", "k": 3}'

A method whose requests stream (Ingest) takes a JSON array: one message per element.
"""
import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("addr")
    ap.add_argument("method", help="SERVICE/METHOD, e.g. akidb.v1.AkiDb/ListCollections")
    ap.add_argument("json", nargs="?", default="{}")
    ap.add_argument("--key", help="API key (sent as authorization: Bearer KEY)")
    ap.add_argument("--tls", metavar="CA_PEM", help="use TLS, trusting this CA certificate")
    a = ap.parse_args()

    if a.tls:
        with open(a.tls, "rb") as f:
            channel = grpc.secure_channel(a.addr, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(a.addr)
    metadata = [("authorization", f"Bearer {a.key}")] if a.key else []

    service_name, _, method_name = a.method.partition("/")
    # Reflection with the key: the server asks a key of any scope for it.
    db = ProtoReflectionDescriptorDatabase(_KeyedChannel(channel, metadata))
    pool = descriptor_pool.DescriptorPool(db)
    try:
        service = pool.FindServiceByName(service_name)
    except grpc.RpcError as e:
        return _failed(e)
    except KeyError:
        print(f"ERROR: the server has no service {service_name!r}", file=sys.stderr)
        return 1
    try:
        method = service.FindMethodByName(method_name)
    except KeyError:
        method = None
    if method is None:
        print(f"ERROR: {service_name} has no method {method_name!r}", file=sys.stderr)
        return 1
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = f"/{service_name}/{method_name}"

    body = json.loads(a.json)
    def to_message(obj):
        return json_format.ParseDict(obj, request_class())

    kind = (method.client_streaming, method.server_streaming)
    stub = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[kind](path, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString)
    request = iter(map(to_message, body)) if method.client_streaming else to_message(body)
    try:
        answer = stub(request, metadata=metadata, timeout=60)
        for m in (answer if method.server_streaming else [answer]):
            print(json_format.MessageToJson(m, preserving_proto_field_name=True))
    except grpc.RpcError as e:
        return _failed(e)
    return 0


def _failed(e) -> int:
    code = dict(e.trailing_metadata() or ()).get("akidb-error-code", "")
    print(f"ERROR: {e.code().name} {code}: {e.details()}", file=sys.stderr)
    return 1


class _KeyedChannel(grpc.Channel):
    """The channel, with the key's metadata on every call reflection makes."""

    def __init__(self, channel, metadata):
        self._c, self._m = channel, metadata

    def _wrap(self, make):
        def factory(*args, **kwargs):
            call = make(*args, **kwargs)
            return lambda req, **kw: call(req, metadata=self._m, **kw)
        return factory

    def unary_unary(self, *a, **k):
        return self._wrap(self._c.unary_unary)(*a, **k)

    def unary_stream(self, *a, **k):
        return self._wrap(self._c.unary_stream)(*a, **k)

    def stream_unary(self, *a, **k):
        return self._wrap(self._c.stream_unary)(*a, **k)

    def stream_stream(self, *a, **k):
        return self._wrap(self._c.stream_stream)(*a, **k)

    def subscribe(self, *a, **k):
        return self._c.subscribe(*a, **k)

    def unsubscribe(self, *a, **k):
        return self._c.unsubscribe(*a, **k)

    def close(self):
        return self._c.close()


if __name__ == "__main__":
    sys.exit(main())
