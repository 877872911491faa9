"""The Open Inference Protocol v2's JSON objects (REST), as pydantic models, with the binary tensor data
extension's parameters. Field names and meanings are the protocol's; the input is this server's one input,
``pixels``, and the output its one output, ``probabilities``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

Value = str | int | float | bool  # a parameter's value, as the protocol allows
Grey = Annotated[float, Field(ge=0, le=255)]
DEPTHS = frozenset({"flat", "rows", "images"})


def _depth(value: Any) -> str:
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return {2: "rows", 3: "images", 4: "channels"}.get(depth, "flat")


# row-major, flat or in the tensor's own nesting ([N][H*W], [N][H][W], or one channel: [N][H][W][1], [N][1][H][W])
TensorData = Annotated[Annotated[list[Grey], Tag("flat")] | Annotated[list[list[Grey]], Tag("rows")]
                       | Annotated[list[list[list[Grey]]], Tag("images")]
                       | Annotated[list[list[list[list[Grey]]]], Tag("channels")], Discriminator(_depth)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True)


class Parameters(Strict):
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Value] = Field(init=False)


class InputParameters(Parameters):
    binary_data_size: Annotated[int, Field(ge=0)] | None = Field(
        None, description="the input's bytes follow the JSON (binary tensor data extension)")


class OutputParameters(Parameters):
    binary_data: bool | None = Field(None, description="answer this output as bytes after the JSON")


class RequestParameters(Parameters):
    binary_data_output: bool | None = Field(None, description="answer every output as bytes after the JSON")


class RequestInput(Strict):
    name: Literal["pixels"]
    shape: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=4)] = Field(
        description="[N, H*W*C], [N, H, W, C] or [N, C, H, W] (C: 1 grey, 3 colour), or a grey model's [N, H, W]")
    datatype: Literal["FP32", "UINT8"]
    parameters: InputParameters | None = None
    data: TensorData | None = Field(None, description="values 0-255 in the shape's order, row-major")


class RequestOutput(Strict):
    name: Literal["probabilities"]
    parameters: OutputParameters | None = None


class InferenceRequest(Strict):
    id: str | None = Field(None, description="echoed in the response")
    parameters: RequestParameters | None = None
    inputs: Annotated[list[RequestInput], Field(min_length=1, max_length=1)]
    outputs: Annotated[list[RequestOutput], Field(max_length=1)] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Value] | None = None
    data: list[float] | None = None


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())  # the protocol's "model_name" is not pydantic's

    model_name: str
    id: str | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


REQUEST_MODELS = [InferenceRequest]
