"""``python scripts/serve.py --checkpoint CKPT [--host 127.0.0.1] [--port 8000] [--model-name lit-mnist]``

Serves the model over HTTP (FastAPI on uvicorn), on this machine only unless --host says otherwise:

* ``POST /predict``: an image (any size, colour and polarity, prepared as ``predict.py`` prepares image files)
  as the body or as the one file of a form (``curl -F image=@digit.png``), or JSON ``{"pixels": ...}``: one
  row of H*W grey levels 0-255 (H*W*3 values, each pixel's R, G, B in turn, for a colour model), one image as H
  rows of W, or a list of rows (a batch). Answers the label, its
  name and the probabilities (and for one image the row the model received); a batch answers lists of those.
* The Open Inference Protocol v2 (KServe, Triton, MLServer; ``tritonclient.http``): ``GET /v2``,
  ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/NAME[/ready]``, ``POST /v2/models/NAME/infer``
  (input ``pixels`` FP32 or UINT8 [N, H*W*C], [N, H, W, C] or [N, C, H, W], output ``probabilities`` FP32
  [N, K]; JSON or binary tensor data).
* ``GET /openapi.json`` describes every route, body and status; ``GET /health``; ``GET /`` a page to draw a
  digit on and see the model's answer as you draw (for a 28x28 grey model of digits).

Every refusal is a 4xx with one line of JSON, ``{"error": ...}``; the service keeps serving.
"""

from __future__ import annotations

import argparse
import re
import socket

from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.errors import DataError

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # one path segment of a URL, as it is


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="serve.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by scripts/fit.py")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    parser.add_argument("--model-name", default="lit-mnist",
                        help="the model's name in the Open Inference Protocol's routes (default %(default)s)")
    parser.add_argument("--header-timeout", "--header_timeout", dest="header_timeout", type=float, default=10.0,
                        help="seconds a connection has to send a request's whole head; a slower one is closed "
                             "(default %(default)s)")
    args = parser.parse_args(argv)
    try:
        import uvicorn

        from lit_mnist.service import Classifier, create_app
        from lit_mnist.service.slow_clients import with_header_timeout
    except ModuleNotFoundError as e:
        raise DataError(f"the service needs the serve extra ({e.name} is missing): pip install 'lit-mnist[serve]'") from None
    if not 1 <= args.port <= 65535:
        raise DataError(f"--port must be in 1-65535, got {args.port}")
    if not 0 < args.header_timeout < float("inf"):
        raise DataError(f"--header-timeout must be a positive number of seconds, got {args.header_timeout}")
    if not MODEL_NAME.fullmatch(args.model_name):
        raise DataError(f"--model-name {args.model_name!r}: use letters, digits, '.', '_' and '-' "
                        "(it is part of a URL), starting with a letter or digit")
    sock = listen(args.host, args.port)
    app = create_app(Classifier(load_model(args.checkpoint)), args.model_name)
    host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address, as a URL writes it
    print(f"serving {args.checkpoint} on http://{host}:{args.port}/ as {args.model_name!r} (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            http=with_header_timeout(args.header_timeout))
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def listen(host: str, port: int) -> socket.socket:
    """The service's socket, bound here rather than by uvicorn: an address that cannot be had (in use, not
    this machine's, a name that does not resolve) is then a one-line error before the model loads. It is made
    as a TCP socket by name (IPPROTO_TCP), as asyncio requires before it turns Nagle's algorithm off on each
    connection; without that, every answer on a kept-alive connection waits for the client's delayed ACK."""
    sock = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             proto=socket.IPPROTO_TCP)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socket.create_server does on POSIX
        sock.bind(address)
        sock.listen()
        return sock
    except OSError as e:
        if sock is not None:
            sock.close()
        raise DataError(f"{host}:{port}: cannot listen there ({e.strerror or e})") from None
