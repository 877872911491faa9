"""``python scripts/serve.py --checkpoint CKPT [--host 127.0.0.1] [--port 8000]``: the model over HTTP.

* ``POST /predict`` with an image (any size, colour and polarity, prepared as ``predict.py`` prepares
  image files) as the body (``Content-Type: image/png``, ``image/jpeg``, ...) or as the one file of a
  form (``curl -F image=@digit.png``), or JSON ``{"pixels": [...]}``: an MNIST row of 784 grey levels
  0-255, or 28 rows of 28, used as it is. A body sent with no telling type (none, octet-stream, curl's
  default form type) is read as JSON if it starts with ``{``, else as an image. Answers ``{"label": int,
  "probabilities": [10 floats], "pixels": [784 ints]}``, the last being the 28x28 row the model received.
* ``GET /health``; ``GET /`` a page to draw a digit on and see the model's answer as you draw.

Built on FastAPI with uvicorn: one process holds the model, the handlers are plain functions with full
control of the body (raw image bytes, a size limit read before the body is) and of the error replies,
and the page is served from the package, with no asset from elsewhere. Every error, bad requests and
unknown routes alike, gets a one-line JSON ``{"error": ...}`` (a 4xx for the client's mistakes); the
service keeps serving.
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
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.data.images import load_image, mnist_pixels
from lit_mnist.errors import DataError
from lit_mnist.model.module import LitMNIST

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4096 * 4096  # a photo of a digit needs far fewer; more is a decompression bomb
UNTOLD = {"", "application/octet-stream", "application/x-www-form-urlencoded", "text/plain"}  # types that say nothing


class RequestError(Exception):
    """A request the service cannot answer: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def pixels_from_json(body: bytes, image_shape: tuple[int, int]) -> np.ndarray:
    height, width = image_shape
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:  # ValueError: also bad UTF-8 and integers of over 4,300 digits
        raise RequestError(400, f"not valid JSON ({e.__class__.__name__})") from None
    values = data.get("pixels") if isinstance(data, dict) else None
    if (isinstance(values, list) and len(values) == height
            and all(isinstance(r, list) and len(r) == width for r in values)):
        values = [v for row in values for v in row]  # rows of the image: the same row-major order as a CSV row
    if not isinstance(values, list) or len(values) != height * width:
        raise RequestError(422, f'expected {{"pixels": [{height * width} grey levels 0-255]}} or {height} rows '
                                f'of {width}')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise RequestError(422, "pixels must be numbers")
    if not all(0 <= v <= 255 for v in values):  # compared as Python numbers: NaN, inf and huge integers fail here
        raise RequestError(422, "pixels must be grey levels in 0-255")
    return np.asarray(values, dtype=np.float32)


def pixels_from_image(body: bytes, image_shape: tuple[int, int]) -> np.ndarray:
    try:
        image = load_image(body, "request body", max_pixels=MAX_PIXELS)
        return mnist_pixels(image, "request body", image_shape).astype(np.float32)
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
            probs = self.model(torch.from_numpy(pixels.reshape(1, -1)))[0].tolist()
        return {"label": int(np.argmax(probs)), "probabilities": [round(p, 6) for p in probs],
                "pixels": np.asarray(pixels).round().astype(int).tolist()}

    def answer(self, content_type: str, body: bytes) -> dict:
        if not body:
            raise RequestError(400, "empty body: send an image (Content-Type image/...) or JSON {\"pixels\": [...]}")
        kind = media_type(content_type)
        shape = self.model.image_shape
        if kind == "application/json" or kind in UNTOLD and body.lstrip()[:1] == b"{":
            return self(pixels_from_json(body, shape))
        try:
            return self(pixels_from_image(body, shape))
        except RequestError as e:
            if e.status == 415 and not kind.startswith("image/"):  # neither JSON nor an image: say what is wanted
                raise RequestError(415, f"Content-Type {kind or '(none)'}: send image/png, image/jpeg, ... "
                                        "or application/json") from None
            raise


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


async def uploaded_file(scope: dict, body: bytes) -> tuple[bytes, str]:
    """The one file of a multipart form (``curl -F image=@digit.png``) and its declared type, parsed by
    Starlette from the body already read within the size limit."""
    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(scope, receive).form(max_files=1, max_fields=20, max_part_size=MAX_BODY_BYTES)
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise RequestError(422, "a form with no file: send the image as a file field (curl -F image=@digit.png)")
    return await files[0].read(), files[0].content_type or ""


def page(model: LitMNIST) -> str:
    """The drawing page, told the model's classes and image shape (drawing is for 28x28 models)."""
    described = json.dumps({"classes": model.class_names, "image_shape": list(model.image_shape)})
    html = resources.files("lit_mnist.apps").joinpath("static/index.html").read_text(encoding="utf-8")
    return html.replace("/*MODEL*/null", described.replace("</", "<\\/"))


def create_app(classifier: Classifier, name: str = "model") -> FastAPI:
    app = FastAPI(title="lit-mnist", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    def _refused(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(StarletteHTTPException)  # unknown routes and methods, unparsable forms
    def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = f"{request.method} {request.url.path}: {error.detail}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)  # a fault of the service: still one line of JSON (uvicorn logs the traceback)
    def _failed(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({error.__class__.__name__})"}, status_code=500)

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
        content_type = request.headers.get("content-type", "")
        if media_type(content_type) == "multipart/form-data":
            body, content_type = await uploaded_file(request.scope, bytes(body))
        answer = await run_in_threadpool(classifier.answer, content_type, bytes(body))
        return JSONResponse(answer)

    @app.api_route("/health", methods=["GET", "HEAD"])
    def health() -> dict:
        model = classifier.model
        return {"status": "ok", "model": name, "num_classes": model.num_classes, "image_shape": list(model.image_shape)}

    html = page(classifier.model)

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def index() -> str:
        return html

    return app


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="serve.py", description=__doc__,
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
