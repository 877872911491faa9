"""A Keras model file read as data, with json and h5py: its config and its weights, nothing executed.

Three layouts are read:

* a Keras 3 ``.keras`` file: a zip of ``config.json`` and ``model.weights.h5`` (a layer's variables under
  ``layers/<key>/vars/0, 1, ...``, in the layer's own order, the ``vars`` group's ``name`` attribute naming
  the layer: the keys are Keras's own, counted within the model);
* an ``.h5`` saved by Keras 3 (``model.save("m.h5")``): the config in the root attribute ``model_config``, each
  layer's variables under ``model_weights/<layer>/``, in the order of the group's ``weight_names`` attribute
  (``<model>/<layer>/<variable>``);
* an ``.h5`` saved by Keras 2 or tf-keras: the same, the names being ``<layer>/<variable>:0``.

The file is untrusted: anything that is not one of these, or is damaged, is a one-line :class:`DataError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lit_mnist.errors import DataError

MAX_MEMBER_BYTES = 2 << 30  # a member of a .keras zip unpacking to more is no digit classifier (a zip bomb)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class KerasFile:
    """``config``: the model's ``{"class_name": ..., "config": {...}}``; ``weights``: each layer's variables in its
    own order, as (name, array), the name where the file gives one (None in a ``.keras`` file)."""

    path: Path
    layout: str  # "keras", "h5 (Keras 3)" or "h5 (Keras 2)"
    config: dict
    weights: dict[str, list[tuple[str | None, np.ndarray]]]
    sha256: str
    optimizer: dict | None = None  # compile()'s optimizer, {"class_name", "config"} as Keras wrote it, if compiled
    loss: dict | str | None = None  # compile()'s loss: a name, or {"class_name", "config"}


def read_keras_file(path: str | Path) -> KerasFile:
    path = Path(path)
    if path.is_dir():
        kind = "a TensorFlow SavedModel" if (path / "saved_model.pb").is_file() else "a folder"
        raise DataError(f"{path}: {kind}, not a Keras model file: save the model as .keras (model.save('model.keras')) "
                        "or .h5")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(b"PK\x03\x04"):
        config, weights = _read_keras_zip(path, data)
        compiled = config.get("compile_config") if isinstance(config.get("compile_config"), dict) else {}
        return KerasFile(path, "keras", config, weights, digest, compiled.get("optimizer"), compiled.get("loss"))
    if data.startswith(_HDF5_MAGIC):
        layout, config, weights, training = _read_h5(path, data)
        return KerasFile(path, layout, config, weights, digest, training.get("optimizer_config"), training.get("loss"))
    raise DataError(f"{path}: not a Keras model file (neither a .keras zip nor an HDF5 .h5 file)")


def _read_keras_zip(path: Path, data: bytes) -> tuple[dict, dict]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            for name in ("config.json", "model.weights.h5"):
                if name not in members:
                    raise DataError(f"{path}: a zip without {name}: not a Keras 3 .keras file")
                if members[name].file_size > MAX_MEMBER_BYTES:
                    raise DataError(f"{path}: {name} unpacks to {members[name].file_size} bytes: too large to read")
            config = _json(path, archive.read("config.json"), "config.json")
            weights_h5 = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as e:
        raise DataError(f"{path}: damaged zip file ({e.__class__.__name__})") from None
    weights = {}
    with _h5(path, weights_h5) as h5:
        layers = h5.get("layers")
        for key, group in (layers.items() if layers is not None else ()):
            variables = group.get("vars")
            if variables is not None:
                name = variables.attrs.get("name", key)
                name = name.decode() if isinstance(name, bytes) else str(name)
                order = sorted(variables, key=lambda index: int(index) if index.isdigit() else -1)
                weights[name] = [(None, _array(path, variables[index], f"layers/{key}/vars/{index}"))
                                 for index in order]
    return config, weights


def _read_h5(path: Path, data: bytes) -> tuple[str, dict, dict, dict]:
    with _h5(path, data) as h5:
        if "model_config" not in h5.attrs:
            raise DataError(f"{path}: an HDF5 file without a model config (weights alone?): save the whole model")
        config = _json(path, h5.attrs["model_config"], "its model_config")
        version = h5.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        layout = "h5 (Keras 3)" if version.startswith("3") else "h5 (Keras 2)"
        model_weights = h5.get("model_weights")
        weights = {}
        for name, group in (model_weights.items() if model_weights is not None else ()):
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
            weights[name] = [(n.rsplit("/", 1)[-1].split(":")[0], _array(path, group.get(n), f"{name}/{n}"))
                             for n in names]
        training = _training_config(h5.attrs.get("training_config"))
    return layout, config, weights, training


def _training_config(raw) -> dict:
    """compile()'s optimizer and loss, an .h5 file's ``training_config``; empty where there is none or it is not
    JSON (they are a convenience for training on: their absence stops nothing)."""
    try:
        training = json.loads(raw) if raw is not None else None
    except (ValueError, TypeError, RecursionError):
        return {}
    return training if isinstance(training, dict) else {}


class _h5:
    """h5py's File over bytes, its failures a one-line DataError."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data = path, data

    def __enter__(self):
        import h5py  # here: reading a Keras file is the one use of it

        try:
            self.file = h5py.File(io.BytesIO(self.data), "r")
        except (OSError, ValueError) as e:
            raise DataError(f"{self.path}: damaged HDF5 data ({str(e).splitlines()[0][:80]})") from None
        return self.file

    def __exit__(self, *exc) -> None:
        self.file.close()


def _array(path: Path, dataset, where: str) -> np.ndarray:
    if dataset is None or not hasattr(dataset, "shape"):
        raise DataError(f"{path}: the weight {where} is missing")
    try:
        array = np.asarray(dataset[()])
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{path}: the weight {where} cannot be read ({e.__class__.__name__})") from None
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: the weight {where} is not numbers ({array.dtype})")
    return array


def _json(path: Path, raw, what: str) -> dict:
    try:
        config = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        raise DataError(f"{path}: {what} is not JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise DataError(f"{path}: {what} does not describe a model")
    return config
