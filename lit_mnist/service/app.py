"""The FastAPI application: ``/predict``, the Open Inference Protocol v2, ``/health`` and the drawing page.

One process holds the model; the page is served from the package, with no asset from elsewhere. The OpenAPI
document (``/openapi.json``) describes every route's bodies and every status it may answer.
"""

from __future__ import annotations

import json
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import lit_mnist
from lit_mnist.service import errors
from lit_mnist.service.classifier import Classifier
from lit_mnist.service.oip import oip_router
from lit_mnist.service.predict import predict_router

REF = "#/components/schemas/{model}"


class Health(BaseModel):
    status: str
    model: str
    num_classes: int
    image_shape: list[int]


def create_app(classifier: Classifier, model_name: str = "lit-mnist") -> FastAPI:
    app = FastAPI(title="lit-mnist", version=lit_mnist.__version__, description=__doc__.split("\n\n", 1)[1].strip(),
                  docs_url=None, redoc_url=None)  # the docs pages load their scripts from a CDN: none here
    errors.install(app)
    request_models = []
    for router, models in (predict_router(classifier), oip_router(classifier, model_name)):
        app.include_router(router)
        request_models += models

    @app.get("/health", response_model=Health, summary="The model served")
    def health() -> Health:
        return Health(status="ok", model=model_name, num_classes=len(classifier.class_names),
                      image_shape=list(classifier.image_shape))

    html = page(classifier)

    @app.get("/", response_class=HTMLResponse, summary="A page to draw a digit on and see the model's answer")
    def index() -> str:
        return html

    @app.head("/health", include_in_schema=False)
    @app.head("/", include_in_schema=False)
    def head() -> None:
        return None

    def openapi() -> dict:
        # the request bodies are read by the routes themselves (images, and the protocol's binary extension, are
        # not JSON), so their models are added to the document's components here, where the routes refer to them
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema([(model, "validation") for model in request_models], ref_template=REF)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def page(classifier: Classifier) -> str:
    """The drawing page, told the model's classes, image shape and how it prepares a picture (drawing is for 28x28
    grey models of digits: a drawing is prepared as MNIST made its digits)."""
    described = json.dumps({"classes": classifier.class_names, "image_shape": list(classifier.image_shape),
                            "preparation": classifier.preparation})
    html = resources.files("lit_mnist.apps").joinpath("static/index.html").read_text(encoding="utf-8")
    return html.replace("/*MODEL*/null", described.replace("</", "<\\/"))
