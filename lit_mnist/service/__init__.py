"""The model over HTTP (``scripts/serve.py``): FastAPI routes whose bodies are pydantic models.

``predict`` is the service's own route (an image, or rows of grey levels, one or a batch), ``oip`` the
Open Inference Protocol v2 that KServe, Triton, MLServer and their clients speak, ``app`` puts them together
with the drawing page; ``body`` reads a request body within its limit, ``errors`` turns every refusal into a
4xx with one line of JSON, and ``classifier`` holds the model.
"""

from lit_mnist.service.app import create_app
from lit_mnist.service.classifier import Classifier

__all__ = ["Classifier", "create_app"]
