"""A Keras model file read as data, with json and h5py: its config and its weights, nothing executed.

Three layouts are read:

* a Keras 3 ``.keras`` file: a zip of ``config.json`` and ``model.weights.h5`` (a layer's variables under
  ``layers/<key>/vars/0, 1, ...``, in the layer's own order, the ``vars`` group's ``name`` attribute naming
  the layer: the keys are Keras's own, counted within the model);
* an ``.h5`` saved by Keras 3 (``model.save("m.h5")``): the config in the root attribute ``model_config``, each
  layer's variables under ``model_weights/<layer>/``, in the order of the group's ``weight_names`` attribute
  (``<model>/<layer>/<variable>``);
* an ``.h5`` saved by Keras 2 or tf-keras: the same, the names being ``<layer>/<variable>:0``.

A model inside the model keeps its layers' variables within its own group (``layers/<key>/layers/...`` in a
``.keras`` file, its ``weight_names`` naming each layer in an ``.h5``): they are read as ``<model>/<layer>``.

The file is untrusted: anything that is not one of these, or is damaged, is a one-line :class:`DataError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from lit_mnist.errors import DataError
from lit_mnist.keras_import.records import ModelRecord, layers_by_path, parse_model

# Limits, each checked before the bytes it bounds are read or allocated
MAX_BYTES = 512 << 20  # the file, a zip member inflated, and the weights declared (--max-bytes raises it)
MAX_CONFIG_BYTES = 16 << 20  # config.json, and an .h5 file's model_config and training_config attributes
MAX_MEMBERS = 64  # members of a .keras zip (Keras writes three: config.json, metadata.json, model.weights.h5)
MAX_RATIO = 1000  # a zip member's size over its compressed size, for members over MAX_CONFIG_BYTES
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class KerasFile:
    """``config``: the model's ``{"class_name": ..., "config": {...}}`` as Keras wrote it, ``model`` the same as
    checked records; ``weights``: each layer's variables in its own order, as (name, array), the name where the
    file gives one (None in a ``.keras`` file), by the layer's path (its name; ``<model>/<layer>`` within a model
    inside the model)."""

    path: Path
    layout: str  # "keras", "h5 (Keras 3)" or "h5 (Keras 2)"
    config: dict
    model: ModelRecord
    weights: dict[str, list[tuple[str | None, np.ndarray]]]
    sha256: str
    optimizer: dict | None = None  # compile()'s optimizer, {"class_name", "config"} as Keras wrote it, if compiled
    loss: dict | str | None = None  # compile()'s loss: a name, or {"class_name", "config"}
    optimizer_steps: int | None = None  # the optimizer's ``iterations`` when saved: the steps it had taken
    # the optimizer's variables as Keras 3 saves them (``optimizer.variables``: iterations, a constant rate's
    # variable, then the slots), in its order; None where the file has none or is Keras 2's (another layout)
    optimizer_variables: list[np.ndarray] | None = None


def read_keras_file(path: str | Path, max_bytes: int = MAX_BYTES) -> KerasFile:
    """The file's config and the weights of the layers its config names, read as untrusted data: every limit
    above is checked before the bytes it bounds are read; an HDF5 object is reached through hard links alone and
    a dataset read only when its bytes lie plainly in the file (no external storage, virtual dataset, chunks or
    filters, which Keras never writes)."""
    path = Path(path)
    if path.is_dir():
        kind = "a TensorFlow SavedModel" if (path / "saved_model.pb").is_file() else "a folder"
        raise DataError(f"{path}: {kind}, not a Keras model file: save the model as .keras (model.save('model.keras')) "
                        "or .h5")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{path}: {size} bytes, over the limit of {max_bytes} (--max-bytes raises it)")
    with open(path, "rb") as file:
        magic = file.read(len(_HDF5_MAGIC))
    if magic.startswith(b"PK\x03\x04"):  # read from the zip member by member; hashed as a stream
        config, model, weights, steps, variables = _read_keras_zip(path, max_bytes)
        compiled = config.get("compile_config") if isinstance(config.get("compile_config"), dict) else {}
        return KerasFile(path, "keras", config, model, weights, _sha256(path), compiled.get("optimizer"),
                         compiled.get("loss"), steps, variables)
    if magic == _HDF5_MAGIC:  # held once, whole: h5py reads it from memory, never following a path out of it
        data = path.read_bytes()
        layout, config, model, weights, training, steps, variables = _read_h5(path, data, max_bytes)
        return KerasFile(path, layout, config, model, weights, hashlib.sha256(data).hexdigest(),
                         training.get("optimizer_config"), training.get("loss"), steps, variables)
    raise DataError(f"{path}: not a Keras model file (neither a .keras zip nor an HDF5 .h5 file)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_keras_zip(path: Path, max_bytes: int) -> tuple[dict, ModelRecord, dict, int | None, list | None]:
    with _zip(path) as archive:
        members = _members(path, archive)
        for name in ("config.json", "model.weights.h5"):
            if name not in members:
                raise DataError(f"{path}: a zip without {name}: not a Keras 3 .keras file")
        config = _json(path, _inflate(path, archive, members["config.json"], MAX_CONFIG_BYTES), "config.json")
        model = parse_model(config, path)  # checked before the weights are inflated
        weights_h5 = _inflate(path, archive, members["model.weights.h5"], max_bytes)
    described = dict(layers_by_path(model))
    weights: dict = {}
    with _h5(path, weights_h5) as h5:
        budget = _Budget(path, max_bytes)
        _read_layers(path, _hard(path, h5, "layers", required=False), "layers", "", described, budget, weights)
        # the optimizer's variables, iterations first (keras/src/optimizers/base_optimizer.py)
        variables = _hard(path, h5, "optimizer", required=False)
        variables = _hard(path, variables, "vars", "optimizer/vars", required=False) if variables is not None else None
        steps = _steps(path, variables, ("0",), "optimizer/vars", budget)
        state = None
        if variables is not None and steps is not None:
            order = sorted(variables.keys(), key=lambda index: int(index) if index.isdigit() else -1)
            state = [budget.read(_hard(path, variables, index, f"optimizer/vars/{index}"), f"optimizer/vars/{index}")
                     for index in order]
    return config, model, weights, steps, state


def _read_layers(path: Path, layers, where: str, prefix: str, described: dict, budget: _Budget, weights: dict) -> None:
    """The variables of the layers under a ``.keras`` weights group (``layers/<key>/vars``), by the layer's path;
    a model inside the model's own layers under ``layers/<key>/layers``, as ``<model>/<layer>``."""
    for key in (layers.keys() if layers is not None else ()):
        group = _hard(path, layers, key, f"{where}/{key}")
        variables = _hard(path, group, "vars", f"{where}/{key}/vars", required=False)
        name = variables.attrs.get("name", key) if variables is not None else key
        name = prefix + (name.decode() if isinstance(name, bytes) else str(name))
        if name not in described and prefix + key not in described:
            continue  # a group no layer of the config names is never read
        if name in described and described[name].model is not None:
            _read_layers(path, _hard(path, group, "layers", f"{where}/{key}/layers", required=False),
                         f"{where}/{key}/layers", f"{name}/", described, budget, weights)
        if variables is None:
            continue
        order = sorted(variables.keys(), key=lambda index: int(index) if index.isdigit() else -1)
        datasets = [(index, _hard(path, variables, index, f"{where}/{key}/vars/{index}")) for index in order]
        weights[name] = [(None, budget.read(dataset, f"{where}/{key}/vars/{index}")) for index, dataset in datasets]


def keras_zip_member(path: Path, name: str, max_bytes: int = MAX_BYTES) -> bytes:
    """One member of a .keras file, read within the same limits (the file was read once already)."""
    with _zip(path) as archive:
        members = _members(path, archive)
        if name not in members:
            raise DataError(f"{path}: a zip without {name}: not a Keras 3 .keras file")
        return _inflate(path, archive, members[name], max_bytes)


@contextlib.contextmanager
def _zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """The zip archive at ``path``; what zipfile or zlib raise while it is read is one line. Our own refusals
    (a DataError) pass as they are."""
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as e:
        raise DataError(f"{path}: damaged zip file ({e.__class__.__name__}: {str(e)[:80]})") from None


def _members(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The zip's members by name: a bounded count of them, each named once, and every name a plain relative one."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DataError(f"{path}: a zip of {len(infos)} members; a .keras file has a few (at most {MAX_MEMBERS} read)")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not name or name.startswith("/") or ".." in parts or ":" in name:
            raise DataError(f"{path}: a zip member named {name!r}: not a plain relative name")
        if name in members:
            raise DataError(f"{path}: the zip holds two members named {name!r}")
        members[name] = info
    return members


def _inflate(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, inflated in chunks and never past ``limit`` whatever its header declares."""
    name = info.filename
    if info.file_size > limit:
        raise DataError(f"{path}: {name} declares {info.file_size} bytes, over the limit of {limit} "
                        "(--max-bytes raises it)")
    if info.file_size > MAX_CONFIG_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise DataError(f"{path}: {name} inflates {info.file_size / max(info.compress_size, 1):.0f} times: a zip bomb")
    out, total = io.BytesIO(), 0
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise DataError(f"{path}: {name} inflates past the limit of {limit} bytes (--max-bytes raises it)")
            out.write(chunk)
    return out.getvalue()


def _read_h5(path: Path, data: bytes, max_bytes: int) -> tuple[str, dict, ModelRecord, dict, dict, int | None,
                                                               list | None]:
    with _h5(path, data) as h5:
        if "model_config" not in h5.attrs:
            raise DataError(f"{path}: an HDF5 file without a model config (weights alone?): save the whole model")
        config = _json(path, _attribute(path, h5, "model_config"), "its model_config")
        version = h5.attrs.get("keras_version", b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        layout = "h5 (Keras 3)" if version.startswith("3") else "h5 (Keras 2)"
        model = parse_model(config, path)
        described = dict(layers_by_path(model))
        budget = _Budget(path, max_bytes)
        model_weights = _hard(path, h5, "model_weights", required=False)
        weights: dict = {}
        for name in (model_weights.keys() if model_weights is not None else ()):
            if name not in described:
                continue  # a group no layer of the config names is never read
            group = _hard(path, model_weights, name, f"model_weights/{name}")
            nested = described[name].model is not None
            variables = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
            for n in variables:
                array = budget.read(_reach(path, group, n, f"model_weights/{name}"), f"{name}/{n}")
                weights.setdefault(_h5_layer(name, n) if nested else name, []).append(
                    (n.rsplit("/", 1)[-1].split(":")[0], array))
        raw_training = _attribute(path, h5, "training_config") if "training_config" in h5.attrs else None
        training = _training_config(raw_training)
        optimizer_weights = _hard(path, h5, "optimizer_weights", required=False)
        steps = _h5_steps(path, optimizer_weights, budget)
        state = (_h5_optimizer_variables(path, optimizer_weights, budget)
                 if layout == "h5 (Keras 3)" and steps is not None else None)
    return layout, config, model, weights, training, steps, state


def _h5_optimizer_variables(path: Path, optimizer_weights, budget: _Budget) -> list[np.ndarray] | None:
    """Keras 3's optimizer variables in an .h5 file, in the order of ``optimizer_weights``'s ``weight_names``
    (``<optimizer>/iteration``, ``<optimizer>/<variable path>_<slot>``, ...): Keras's own order."""
    names = optimizer_weights.attrs.get("weight_names") if optimizer_weights is not None else None
    if names is None:
        return None
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return [budget.read(_reach(path, optimizer_weights, name, "optimizer_weights"), f"optimizer_weights/{name}")
            for name in names]


# the step count's name in an .h5 file's optimizer_weights/<optimizer>/: Keras 3's, then Keras 2's
_STEP_NAMES = ("iteration", "iterations", "iter:0", "iterations:0")


def _h5_steps(path: Path, optimizer_weights, budget: _Budget) -> int | None:
    """The optimizer's step count in an .h5 file (``optimizer_weights/<optimizer name>/iteration``), if saved."""
    if optimizer_weights is None:
        return None
    import h5py

    for name in optimizer_weights:
        group = _hard(path, optimizer_weights, name, f"optimizer_weights/{name}")
        if isinstance(group, h5py.Group):
            steps = _steps(path, group, _STEP_NAMES, f"optimizer_weights/{name}", budget)
            if steps is not None:
                return steps
    return None


def _steps(path: Path, group, names: tuple[str, ...], where: str, budget: _Budget) -> int | None:
    """The first of ``names`` in ``group`` that is a scalar count (what Keras writes), else None: the count only
    informs, so a file without it, or with something else there, is imported all the same."""
    for name in names:
        if group is None or name not in group:
            continue
        value = budget.read(_hard(path, group, name, f"{where}/{name}"), f"{where}/{name}")
        if value.shape == () and np.isfinite(value) and value >= 0 and float(value).is_integer():
            return int(value)
    return None


def _h5_layer(model: str, weight_name: str) -> str:
    """The path of the layer a nested model's weight belongs to: Keras 3 names it ``<model>/<layer>/<variable>``,
    Keras 2 ``<layer>/<variable>:0``."""
    parts = weight_name.split(":")[0].split("/")[:-1]
    if parts and parts[0] == model:
        parts = parts[1:]
    return "/".join([model, *parts])


def _attribute(path: Path, h5, name: str):
    """A root attribute (model_config, training_config), its stored size checked before it is read."""
    size = h5.attrs.get_id(name).get_storage_size()
    if size > MAX_CONFIG_BYTES:
        raise DataError(f"{path}: its {name} holds {size} bytes, over the limit of {MAX_CONFIG_BYTES}")
    return h5.attrs[name]


def _hard(path: Path, group, name: str, where: str | None = None, required: bool = True):
    """``group[name]`` where it is a hard link: a soft link or an external link (to another file) is refused
    before it is followed."""
    import h5py

    where = where or name
    link = group.get(name, getlink=True)
    if link is None:
        if required:
            raise DataError(f"{path}: the weight {where} is missing")
        return None
    if not isinstance(link, h5py.HardLink):
        kind = "an external link (to another file)" if isinstance(link, h5py.ExternalLink) else "a soft link"
        raise DataError(f"{path}: {where} is {kind}, which a Keras file never holds")
    return group[name]


def _reach(path: Path, group, relative: str, where: str):
    """The object at ``relative`` (``dense/kernel:0``) below ``group``, every link on the way a hard one."""
    node = group
    for part in relative.split("/"):
        if not part:
            continue
        where = f"{where}/{part}"
        node = _hard(path, node, part, where)
    return node


class _Budget:
    """Reads datasets as untrusted data, within ``max_bytes`` of weights in all: each is checked before any of
    its bytes is read."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.left = path, max_bytes

    def read(self, dataset, where: str) -> np.ndarray:
        import h5py
        from h5py import h5d

        path = self.path
        if not isinstance(dataset, h5py.Dataset):
            raise DataError(f"{path}: the weight {where} is missing (not a dataset)")
        dtype = dataset.dtype
        if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize > 8:
            raise DataError(f"{path}: the weight {where} is not numbers ({dtype})")
        if dataset.is_virtual:
            raise DataError(f"{path}: the weight {where} is a virtual dataset (made of other files' data), which "
                            "a Keras file never holds")
        plist = dataset.id.get_create_plist()
        if plist.get_external_count():
            raise DataError(f"{path}: the weight {where} keeps its bytes in an external file, which a Keras file "
                            "never does")
        if plist.get_layout() not in (h5d.CONTIGUOUS, h5d.COMPACT) or plist.get_nfilters():
            raise DataError(f"{path}: the weight {where} is stored chunked or filtered (compressed), which Keras "
                            "never writes")
        nbytes = math.prod(dataset.shape) * dtype.itemsize
        if nbytes > self.left:
            raise DataError(f"{path}: the weight {where} declares {nbytes} bytes, past the limit of the weights' "
                            "bytes (--max-bytes raises it)")
        if plist.get_layout() == h5d.CONTIGUOUS and nbytes and dataset.id.get_storage_size() != nbytes:
            raise DataError(f"{path}: the weight {where} declares {nbytes} bytes but stores "
                            f"{dataset.id.get_storage_size()}: never written, or damaged")
        self.left -= nbytes
        try:
            return np.asarray(dataset[()])
        except (OSError, ValueError, TypeError) as e:
            raise DataError(f"{path}: the weight {where} cannot be read ({e.__class__.__name__})") from None


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
        # HDF5 loads no filter plugins (code from its plugin folders): Keras writes no filtered data, and a filtered
        # dataset is refused before it is read. Set before h5py loads the library (it is read at its start)
        os.environ["HDF5_PLUGIN_PRELOAD"] = "::"
        import h5py  # here: reading a Keras file is the one use of it

        try:
            self.file = h5py.File(io.BytesIO(self.data), "r")
        except (OSError, ValueError) as e:
            raise DataError(f"{self.path}: damaged HDF5 data ({str(e).splitlines()[0][:80]})") from None
        return self.file

    def __exit__(self, *exc) -> None:
        self.file.close()


def _json(path: Path, raw, what: str) -> dict:
    try:
        config = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        raise DataError(f"{path}: {what} is not JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise DataError(f"{path}: {what} does not describe a model")
    return config
