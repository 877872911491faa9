"""The Open Inference Protocol v2 (REST) beside ``/predict``: health, server and model metadata, and
inference on a batch of rows, with the binary tensor data extension in both directions (``tritonclient.http``
uses it by default): the JSON object, then the inputs' raw little-endian bytes, its length in the
``Inference-Header-Content-Length`` header."""


import json
import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError

import lit_mnist
from lit_mnist.service.body import BINARY, read_body
from lit_mnist.service.classifier import Classifier
from lit_mnist.service.errors import RequestError, one_line, refusals
from lit_mnist.service.oip_models import (
    DEPTHS,
    REQUEST_MODELS,
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ResponseOutput,
    ServerMetadata,
)

DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}
HEADER_LENGTH = "Inference-Header-Content-Length"
EMPTY_OK = {200: {"description": "Yes (the body is empty)", "content": None}}


def oip_router(classifier: Classifier, model_name: str) -> tuple[APIRouter, list[type[BaseModel]]]:
    """The protocol's routes for the one model, named ``model_name``, and the request models they refer to."""
    router = APIRouter(prefix="/v2", tags=["Open Inference Protocol v2"])
    Name = Annotated[str, Path(description="the model's name", json_schema_extra={"enum": [model_name]})]

    def known(name: str) -> None:
        if name != model_name:
            raise RequestError(404, f"unknown model {name!r}: this server has {model_name!r}")

    @router.get("", response_model=ServerMetadata, summary="Server metadata")
    def server_metadata() -> ServerMetadata:
        return ServerMetadata(name="lit-mnist", version=lit_mnist.__version__, extensions=["binary_tensor_data"])

    @router.get("/health/live", response_class=Response, responses=EMPTY_OK, summary="Is the server live?")
    def live() -> Response:
        return Response()

    @router.get("/health/ready", response_class=Response, responses=EMPTY_OK, summary="Are its models ready?")
    def ready() -> Response:
        return Response()  # the model is loaded before the server listens

    @router.get("/models/{name}/ready", response_class=Response, responses={**EMPTY_OK, **refusals(404, 422)},
                summary="Is the model ready?")
    def model_ready(name: Name) -> Response:
        known(name)
        return Response()

    @router.get("/models/{name}", response_model=ModelMetadata, responses=refusals(404, 422), summary="Model metadata")
    def model_metadata(name: Name) -> ModelMetadata:
        known(name)
        return ModelMetadata(
            name=model_name, platform="pytorch",
            inputs=[MetadataTensor(name="pixels", datatype="FP32", shape=[-1, classifier.row_size])],
            outputs=[MetadataTensor(name="probabilities", datatype="FP32", shape=[-1, len(classifier.class_names)])])

    def infer_now(body: bytes, header_length: int | None) -> InferenceResponse | Response:
        head, tail = split(body, header_length)
        try:
            request = InferenceRequest.model_validate_json(head)
        except ValidationError as e:
            raise RequestError(400, one_line(e, DEPTHS)) from None
        probabilities = classifier(rows(request, tail, classifier.image_shape))
        return answer(request, probabilities, model_name)

    @router.post(
        "/models/{name}/infer", response_model=InferenceResponse, response_model_exclude_none=True,
        summary="Inference on a batch of rows",
        description="The JSON inference request (`pixels`: FP32 or UINT8 values 0-255, shape [N, H*W*C], "
                    "[N, H, W, C] (Keras's layout) or [N, C, H, W] (torch's), and for a grey model [N, H, W]; C is 1, "
                    "or 3 for a colour model's R, G, B), or, with the binary tensor data extension, that JSON "
                    f"followed by the input's raw little-endian bytes, the JSON's length in the `{HEADER_LENGTH}` "
                    "header. The answer is "
                    "`probabilities`, FP32 [N, K], as JSON or, where asked (`binary_data_output`, `binary_data`), as "
                    "bytes after the JSON.",
        responses={200: {"content": {"application/octet-stream": {"schema": BINARY}},
                         "headers": {HEADER_LENGTH: {"description": "the JSON's length, where bytes follow it",
                                                     "schema": {"type": "integer"}}}},
                   **refusals(400, 404, 413, 415, 422)},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
            "application/octet-stream": {"schema": BINARY}}}},
    )
    async def infer(name: Name, request: Request,
                    # int, not int | None: the schema then says integer (a header is never null)
                    header_length: Annotated[int, Header(alias=HEADER_LENGTH, ge=0)] = None):  # noqa: RUF013
        known(name)
        body = await read_body(request)
        return await run_in_threadpool(infer_now, body, header_length)

    return router, REQUEST_MODELS


def split(body: bytes, header_length: int | None) -> tuple[bytes, bytes]:
    """The JSON object and the bytes after it."""
    if header_length is None:
        return body, b""
    if header_length > len(body):
        raise RequestError(400, f"{HEADER_LENGTH} is {header_length}, but the body has {len(body)} bytes")
    return body[:header_length], body[header_length:]


def rows(request: InferenceRequest, tail: bytes, image_shape: tuple[int, ...]) -> np.ndarray:
    """The input as (N, H*W*C) float32 values 0-255 (each pixel's channels in turn), from its JSON data or its
    bytes, every size checked first."""
    (tensor,) = request.inputs
    height, width, *rest = image_shape
    channels = rest[0] if rest else 1
    shape = tensor.shape
    # a row, or an image with its channels as Keras (last) or torch (first) lays them out; a grey one without
    taken = [[height * width * channels], [height, width, channels], [channels, height, width],
             *([[height, width]] if channels == 1 else [])]
    if shape[1:] not in taken:
        raise RequestError(400, f"input pixels: shape {shape}; the model takes "
                                f"{', '.join(str([-1, *t]) for t in taken[:-1])} or {[-1, *taken[-1]]}")
    count, dtype = math.prod(shape), DTYPES[tensor.datatype]
    size = tensor.parameters.binary_data_size if tensor.parameters else None
    if size is not None:
        if tensor.data is not None:
            raise RequestError(400, "input pixels has both data and binary_data_size: send one")
        if size != len(tail):
            raise RequestError(400, f"input pixels: binary_data_size {size}, but {len(tail)} bytes follow the JSON")
        if size != count * dtype.itemsize:
            raise RequestError(400, f"input pixels: binary_data_size {size}; shape {shape} of {tensor.datatype} is "
                                    f"{count * dtype.itemsize} bytes")
        values = np.frombuffer(tail, dtype).astype(np.float32)
    else:
        if tail:
            raise RequestError(400, f"{len(tail)} bytes follow the JSON, but no input has binary_data_size")
        if tensor.data is None:
            raise RequestError(400, "input pixels has no data: give data, or binary_data_size and its bytes")
        values = from_json_data(tensor.data, shape, tensor.datatype)
    if not np.all((values >= 0) & (values <= 255)):  # NaN fails too
        raise RequestError(400, "input pixels: values must be 0-255")
    if channels > 1 and shape[1:] == [channels, height, width]:  # torch's channels first: Keras's order
        values = values.reshape(shape[0], channels, height * width).transpose(0, 2, 1)
    return values.reshape(shape[0], height * width * channels)


def from_json_data(data: list, shape: list[int], datatype: str) -> np.ndarray:
    try:
        values = np.array(data, dtype=np.float64)
    except ValueError:  # rows of different lengths
        raise RequestError(400, "input pixels: data is ragged; give it flat or nested as its shape") from None
    if values.shape != tuple(shape) and (values.ndim != 1 or values.size != math.prod(shape)):
        raise RequestError(400, f"input pixels: shape {shape}, but data has {values.size} values"
                                + (f" in shape {list(values.shape)}" if values.ndim > 1 else ""))
    if datatype == "UINT8" and not np.array_equal(values, np.round(values)):
        raise RequestError(400, "input pixels: UINT8 data must be whole numbers")
    return values.astype(np.float32).ravel()


def answer(request: InferenceRequest, probabilities: np.ndarray, model_name: str) -> InferenceResponse | Response:
    binary = bool(request.parameters and request.parameters.binary_data_output)
    if request.outputs and request.outputs[0].parameters and request.outputs[0].parameters.binary_data is not None:
        binary = request.outputs[0].parameters.binary_data
    output = ResponseOutput(name="probabilities", datatype="FP32", shape=list(probabilities.shape))
    response = InferenceResponse(model_name=model_name, id=request.id, outputs=[output])
    if not binary:
        output.data = probabilities.ravel().tolist()
        return response
    raw = probabilities.astype("<f4").tobytes()
    output.parameters = {"binary_data_size": len(raw)}
    head = json.dumps(response.model_dump(exclude_none=True)).encode()
    return Response(head + raw, media_type="application/octet-stream", headers={HEADER_LENGTH: str(len(head))})
