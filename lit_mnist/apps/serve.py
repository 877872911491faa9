"""``python scripts/serve.py --checkpoint CKPT [--host 127.0.0.1] [--port 8000]``: the model over HTTP.

* ``POST /predict`` with an image as the body (``Content-Type: image/png``, ``image/jpeg``, ...: any size,
  colour and polarity, prepared as ``predict.py`` prepares image files), or JSON ``{"pixels": [784 grey
  levels 0-255]}`` (an MNIST row, used as it is). Answers ``{"label": int, "probabilities": [10 floats],
  "pixels": [784 ints]}``, the last being the 28x28 row the model received.
* ``GET /health``; ``GET /`` a page to draw a digit on and see the model's answer as you draw.

Built on FastAPI with uvicorn: one process holds the model, the handlers are plain functions with full
control of the body (raw image bytes, a size limit read before the body is) and of the error replies,
and the page is served from the package, with no asset from elsewhere. A bad request gets a 4xx and a
one-line JSON ``{"error": ...}``; the service keeps serving.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from lit_mnist.apps.checkpoints import load_model
from lit_mnist.data.images import load_image, mnist_pixels
from lit_mnist.errors import DataError
from lit_mnist.model.module import LitMNIST

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096  # a photo of a digit needs far fewer; more is a decompression bomb


class RequestError(Exception):
    """A request the service cannot answer: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def pixels_from_json(body: bytes) -> np.ndarray:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RequestError(400, f"not valid JSON ({e.__class__.__name__})") from None
    values = data.get("pixels") if isinstance(data, dict) else None
    if not isinstance(values, list) or len(values) != 784:
        raise RequestError(422, 'expected {"pixels": [784 grey levels 0-255]}')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise RequestError(422, "pixels must be numbers")
    pixels = np.asarray(values, dtype=np.float64)
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise RequestError(422, "pixels must be grey levels in 0-255")
    return pixels.astype(np.float32)


def pixels_from_image(body: bytes) -> np.ndarray:
    try:
        image = load_image(body, "request body", max_pixels=MAX_PIXELS)
        return mnist_pixels(image, "request body").astype(np.float32)
    except DataError as e:
        status = 413 if "too large" in str(e) else 415 if "not a readable image" in str(e) else 422
        raise RequestError(status, str(e)) from None


class Classifier:
    """The model, called from the server's worker threads; one forward at a time."""

    def __init__(self, model: LitMNIST) -> None:
        self.model = model.eval()
        self._lock = threading.Lock()  # torch's intra-op threads are shared: one forward at a time is fastest

    def __call__(self, pixels: np.ndarray) -> dict:
        with self._lock, torch.inference_mode():
            probs = self.model(torch.from_numpy(pixels.reshape(1, 784)))[0].tolist()
        return {"label": int(np.argmax(probs)), "probabilities": [round(p, 6) for p in probs],
                "pixels": np.asarray(pixels).round().astype(int).tolist()}

    def answer(self, content_type: str, body: bytes) -> dict:
        if not body:
            raise RequestError(400, "empty body: send an image (Content-Type image/...) or JSON {\"pixels\": [...]}")
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/json":
            return self(pixels_from_json(body))
        if kind.startswith("image/") or kind == "application/octet-stream":
            return self(pixels_from_image(body))
        raise RequestError(415, f"Content-Type {kind or '(none)'}: send image/png, image/jpeg, ... or application/json")


def page() -> str:
    return resources.files("lit_mnist.apps").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(classifier: Classifier, name: str = "model") -> FastAPI:
    app = FastAPI(title="lit-mnist", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    def _refused(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:  # refused before it is read
            raise RequestError(413, f"body of {declared} bytes; the limit is {MAX_BODY_BYTES}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(413, f"body over the limit of {MAX_BODY_BYTES} bytes")
        answer = await run_in_threadpool(classifier.answer, request.headers.get("content-type", ""), bytes(body))
        return JSONResponse(answer)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": name}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page()

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by scripts/fit.py")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    args = parser.parse_args(argv)
    import uvicorn

    if not 1 <= args.port <= 65535:
        raise DataError(f"--port must be in 1-65535, got {args.port}")
    sock = listen(args.host, args.port)
    classifier = Classifier(load_model(args.checkpoint))
    app = create_app(classifier, Path(args.checkpoint).name)
    host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address, as a URL writes it
    print(f"serving {args.checkpoint} on http://{host}:{args.port}/ (Ctrl-C stops)", flush=True)
    uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")).run(sockets=[sock])
    return 0


def listen(host: str, port: int) -> socket.socket:
    """The service's socket, bound here rather than by uvicorn: an address that cannot be had (in use, not
    this machine's, a name that does not resolve) is then a one-line error before the model loads."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as e:
        raise DataError(f"{host}:{port}: cannot listen there ({e.strerror or e})") from None
