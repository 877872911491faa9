"""``POST /predict``: an image as a user has it, or rows of grey levels as a CSV has them, one or a batch.

The JSON body is a pydantic model sized to the model's image (H x W, or H x W x 3 in colour): ``pixels`` is one row
of H*W grey levels 0-255 (H*W*3 values, each pixel's R, G, B in turn), one image as H rows of W (of W pixels of 3
values), or a list of either (a batch). An image (PNG, JPEG, ... as the body, or as the one file of a form) is
prepared as ``predict.py`` prepares image files, as the model's ``preparation`` says. A body of no telling type (none,
octet-stream, curl's form default) is read as JSON when it starts with ``{``, else as an image.
"""

import math
from typing import Annotated, Any, Union

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, create_model
from python_multipart.exceptions import FormParserError
from starlette.datastructures import UploadFile

from lit_mnist.data.images import ImageTooLarge, UnreadableImage, prepared
from lit_mnist.errors import DataError
from lit_mnist.service.body import BINARY, MAX_BODY_BYTES, read_body
from lit_mnist.service.classifier import Classifier
from lit_mnist.service.errors import RequestError, is_broken_json, one_line, refusals

MAX_PIXELS = 4096 * 4096  # a photo of a digit needs far fewer; more is a decompression bomb
UNTOLD = {"", "application/octet-stream", "application/x-www-form-urlencoded", "text/plain"}  # types that say nothing
FORMS = frozenset({"row", "image", "rows", "images"})
Grey = Annotated[float, Field(ge=0, le=255)]


class Prediction(BaseModel):
    """The answer for one image."""

    label: int = Field(description="the most probable class")
    name: str = Field(description="its name")
    probabilities: list[float] = Field(description="one per class, summing to 1")
    pixels: list[int] = Field(description="the row of H*W grey levels the model received (an image, as prepared)")


class Predictions(BaseModel):
    """The answer for a batch of rows, in their order."""

    labels: list[int]
    names: list[str]
    probabilities: list[list[float]]


def _array(item: Any, least: int, most: int | None = None) -> Any:
    return Annotated[list[item], Field(min_length=least, max_length=most)]


def pixels_request(image_shape: tuple[int, ...]) -> tuple[type[BaseModel], Any]:
    """The JSON body for a model of ``image_shape`` images (``(H, W)`` grey, ``(H, W, 3)`` colour), and the function
    that names the form of its ``pixels`` (which also picks the one branch whose complaint a refusal quotes)."""
    size, image = math.prod(image_shape), Grey
    for side in reversed(image_shape):
        image = _array(image, side, side)
    row = _array(Grey, size, size)
    forms = {"row": row, "image": image, "rows": _array(row, 1), "images": _array(image, 1)}
    if tuple(image_shape)[:1] == (1,) and len(image_shape) == 2:  # an image as its one row reads as a batch of one
        del forms["image"]

    def form(value: Any) -> str:
        depth = _depth(value)
        if depth == len(image_shape) + 1:
            return "images"
        if depth == len(image_shape) and "image" in forms and (
                depth > 2 or len(value) == image_shape[0] and len(value[0]) == image_shape[1]):
            return "image"
        return "rows" if depth == 2 else "row"

    branches = tuple(Annotated[kind, Tag(name)] for name, kind in forms.items())
    pixels = Annotated[Union[branches], Discriminator(form)]  # noqa: UP007 (a union built from a tuple)
    described = f"one row of {_values(image_shape)}" + (f", one image as {_image(image_shape)}" if "image" in forms
                                                         else "") + ", or a list of those (a batch)"
    model = create_model("PredictRequest", __config__=ConfigDict(strict=True),
                         pixels=(pixels, Field(description=described, examples=[[0] * size])))
    return model, form


def _depth(value: Any) -> int:
    """How many lists are nested at the start of ``value``."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        if not value:
            break
        value = value[0]
    return depth


def _values(image_shape: tuple[int, ...]) -> str:
    size = math.prod(image_shape)
    if len(image_shape) == 2:
        return f"{size} grey levels 0-255 (a CSV row's pixels)"
    return f"{size} values 0-255 (each pixel's R, G, B in turn, as a CSV row has them)"


def _image(image_shape: tuple[int, ...]) -> str:
    height, width, *channels = image_shape
    return f"{height} rows of {width}" + (f" pixels of {channels[0]} values" if channels else "")


def predict_router(classifier: Classifier) -> tuple[APIRouter, list[type[BaseModel]]]:
    """The route, and the request models its OpenAPI document refers to."""
    request_model, form = pixels_request(classifier.image_shape)
    size = classifier.row_size
    what = "grey levels" if len(classifier.image_shape) == 2 else "values"
    wanted = (f'send {{"pixels": [{size} {what} 0-255]}}, {_image(classifier.image_shape)}, or a list of rows'
              if classifier.image_shape[0] > 1 else f'send {{"pixels": [{size} {what} 0-255]}} or a list of such rows')
    router = APIRouter()

    def from_json(body: bytes) -> Prediction | Predictions:
        try:
            pixels = request_model.model_validate_json(body).pixels
        except ValidationError as e:
            if is_broken_json(e):
                raise RequestError(400, f"not valid JSON: {one_line(e).removeprefix('Invalid JSON: ')}") from None
            raise RequestError(422, f"{one_line(e, FORMS)} ({wanted})") from None
        rows = np.asarray(pixels, dtype=np.float32).reshape(-1, size)
        probabilities = classifier(rows)
        if form(pixels) in ("row", "image"):
            return single(rows[0], probabilities[0])
        labels = probabilities.argmax(1).tolist()
        return Predictions(labels=labels, names=[classifier.class_names[k] for k in labels],
                           probabilities=rounded(probabilities))

    def single(row: np.ndarray, probabilities: np.ndarray) -> Prediction:
        label = int(probabilities.argmax())
        return Prediction(label=label, name=classifier.class_names[label], probabilities=rounded(probabilities),
                          pixels=row.round().astype(int).tolist())

    def from_image(body: bytes, kind: str) -> Prediction:
        try:
            row = prepared(body, "request body", classifier.image_shape, classifier.preparation,
                           max_pixels=MAX_PIXELS).astype(np.float32)
        except ImageTooLarge as e:
            raise RequestError(413, str(e)) from None
        except UnreadableImage as e:
            if kind.startswith("image/"):
                raise RequestError(415, str(e)) from None
            raise RequestError(415, f"Content-Type {kind or '(none)'}: send image/png, image/jpeg, ... "
                                    "or application/json") from None
        except DataError as e:  # a blank image
            raise RequestError(422, str(e)) from None
        return single(row, classifier(row[None])[0])

    def answer(kind: str, body: bytes) -> Prediction | Predictions:
        if not body:
            raise RequestError(400, f"empty body: send an image (Content-Type image/...) or JSON ({wanted})")
        if kind == "application/json" or kind.endswith("+json") or kind in UNTOLD and body.lstrip()[:1] == b"{":
            return from_json(body)
        return from_image(body, kind)

    @router.post(
        "/predict", response_model=Prediction | Predictions, responses=refusals(400, 413, 415, 422),
        summary="Classify an image, or rows of grey levels",
        description=f"{__doc__.split(chr(10) + chr(10), 1)[1].strip()}\n\nThe body is at most {MAX_BODY_BYTES} "
                    f"bytes: {MAX_BODY_BYTES // (4 * size + 3):,} rows of this model's {size} pixels as JSON integers "
                    "at the least, more where they have fewer digits.",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
            "image/png": {"schema": BINARY}, "image/jpeg": {"schema": BINARY},
            "application/octet-stream": {"schema": BINARY},
            "multipart/form-data": {"schema": {"type": "object", "properties": {"image": BINARY},
                                               "required": ["image"]}}}}},
    )
    async def predict(request: Request) -> Prediction | Predictions:
        body = await read_body(request)
        kind = media_type(request.headers.get("content-type", ""))
        if kind == "multipart/form-data":
            body, kind = await uploaded_file(request, body), "image/*"
        return await run_in_threadpool(answer, kind, body)

    return router, [request_model]


def rounded(probabilities: np.ndarray) -> list:
    """Probabilities to 6 decimals, as Python floats (float32's own digits would print as 0.10000000149...)."""
    return probabilities.astype(float).round(6).tolist()


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


async def uploaded_file(request: Request, body: bytes) -> bytes:
    """The one file of a multipart form (``curl -F image=@digit.png``), parsed by Starlette from the body
    already read within the size limit."""
    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, receive).form(max_files=1, max_fields=20, max_part_size=MAX_BODY_BYTES)
    except FormParserError as e:  # what older Starlette lets through of python-multipart's refusals
        raise RequestError(400, f"the form does not parse ({e.__class__.__name__})") from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise RequestError(422, "a form with no file: send the image as a file field (curl -F image=@digit.png)")
    return await files[0].read()
