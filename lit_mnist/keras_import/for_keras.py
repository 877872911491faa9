"""The copy of a Keras file that ``import_keras.py --check`` hands Keras: the config the importer read, without
the initializers (objects Keras would deserialize, which the imported net ignores: the weights are the file's),
and the weights as read within the limits. Regularizers and constraints stay: the importer carries them, so Keras
reads the same ones (at inference they change nothing).
A Keras 2 file's graph is handed over as the importer reads it, each layer called once.
Keras then loads what the importer accepted, not whatever else the file holds."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

from lit_mnist.keras_import.read import MAX_BYTES, KerasFile, keras_zip_member

DROPPED = re.compile(r".*_initializer$")


def for_keras(keras_file: KerasFile, folder: Path, max_bytes: int = MAX_BYTES) -> Path:
    """A file in ``folder`` that Keras loads as the model of ``keras_file``, in the same layout."""
    config = _without_objects(keras_file.config)
    if keras_file.layout == "h5 (Keras 2)":
        config = _first_calls(config)
    if keras_file.layout == "keras":
        out = folder / "model.keras"
        weights = keras_zip_member(keras_file.path, "model.weights.h5", max_bytes)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("model.weights.h5", weights)
        return out
    import h5py

    out = folder / "model.h5"
    shutil.copyfile(keras_file.path, out)
    with h5py.File(out, "r+") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        if "training_config" in h5.attrs:
            del h5.attrs["training_config"]
    return out


def _first_calls(value):
    """Keras 2's references to a layer's output, ``[layer, node, tensor, kwargs]``, with the node counted as the
    importer reads the graph: each layer called once, its first node. (A tf-keras model inside the model numbers
    its call node 1, having made node 0 when it was built; Keras 3 rebuilds only the call, node 0.)"""
    if isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int) and isinstance(value[2], int):
            return [value[0], 0, *value[2:]]
        return [_first_calls(item) for item in value]
    if isinstance(value, dict):
        return {key: _first_calls(item) for key, item in value.items()}
    return value


def _without_objects(value):
    if isinstance(value, dict):
        return {key: _without_objects(item) for key, item in value.items()
                if not (isinstance(key, str) and DROPPED.fullmatch(key)) and key != "compile_config"}
    if isinstance(value, list):
        return [_without_objects(item) for item in value]
    return value
