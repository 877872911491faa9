"""A request's body, read within the service's limit (before it is read, where Content-Length says it is over),
and decoded where it came compressed (``Content-Encoding: gzip`` or ``deflate``, as ``tritonclient`` may send
it), within the same limit."""

from __future__ import annotations

import zlib

from fastapi import Request

from lit_mnist.service.errors import RequestError

MAX_BODY_BYTES = 2 * 1024 * 1024
BINARY = {"type": "string", "format": "binary"}  # OpenAPI's schema of a body of raw bytes
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body of {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"body over the limit of {limit} bytes")
    return decoded(bytes(body), request.headers.get("content-encoding", ""), limit)


def decoded(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in WBITS:
        raise RequestError(415, f"Content-Encoding {encoding}: send the body as it is, or as gzip or deflate")
    inflater = zlib.decompressobj(WBITS[encoding])
    try:
        out = inflater.decompress(body, limit + 1)  # no more than the limit is ever inflated
    except zlib.error:
        raise RequestError(400, f"the body is not valid {encoding} data") from None
    if len(out) > limit:
        raise RequestError(413, f"body over the limit of {limit} bytes once decompressed")
    if not inflater.eof:
        raise RequestError(400, f"the body's {encoding} data is cut short")
    return out
