"""Checkpoints: written atomically, read as untrusted input, and the start of a new net (``--model.init_from``).

A checkpoint is a pickle, and unpickling can run code. Loading uses ``torch.load(weights_only=True)``:
tensors and plain containers only, so a file that would execute something is refused and nothing in
it runs.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_mnist import atomic
from lit_mnist.errors import DataError
from lit_mnist.keras_import.optimizer_state import KEY
from lit_mnist.model.layers import LayerError, resolve
from lit_mnist.model.module import LitMNIST

# a checkpoint is read whole: past this it is refused before it is read (the largest net a layer list builds,
# 2**28 float32 parameters, with Adam's two moments, stays below it)
MAX_CHECKPOINT_BYTES = 4 << 30


class CheckpointError(DataError):
    pass


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves beside the target and renames: a checkpoint is complete or absent, even on Ctrl-C.

    (Lightning's own save goes through fsspec, which writes to the system temp folder and then moves
    the file: a copy, not a rename, when that folder is on another filesystem.)
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic.atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's content, tensors and plain data only, or a one-line :class:`CheckpointError`."""
    return _read(Path(path), _bytes(Path(path)))


def _bytes(path: Path) -> bytes:
    if path.is_dir():
        last = next((p for p in (path / "checkpoints" / "last.ckpt", path / "last.ckpt") if p.is_file()), None)
        hint = f"did you mean {last}?" if last else "give the checkpoint file (a run's checkpoints/last.ckpt)"
        raise CheckpointError(f"{path}: is a folder; {hint}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path}: {size} bytes, over the limit of {MAX_CHECKPOINT_BYTES} for a checkpoint")
    data = path.read_bytes()
    if not data.startswith((b"PK\x03\x04", b"\x80")):  # torch.save: a zip, or a raw pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    return data


def _read(path: Path, data: bytes) -> dict:
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):  # the weights-only unpickler met a reference to a function or class
            culprit = str(e).split("GLOBAL", 1)[1].split()[0]
            raise CheckpointError(
                f"{path}: refused to load: it refers to {culprit}, which could run code when unpickled "
                "(only tensors and plain data are accepted)"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (damaged pickle data)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        why = "damaged or truncated zip archive" if "zip archive" in str(e) else _first_line(e)
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({why})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0][:120] if text else "") or type(error).__name__


def load_model(path: str | Path) -> LitMNIST:
    """A LitMNIST from a checkpoint written by ``scripts/fit.py`` (or ``import_keras.py``), in eval mode on the CPU."""
    path = Path(path)
    data = _bytes(path)
    hparams = _read(path, data).get("hyper_parameters") or {}
    if "arch" in hparams:  # the former format, whose nets were named, not layer lists
        raise CheckpointError(f"{path}: a checkpoint of an earlier lit-mnist (--model.arch {hparams['arch']}), whose "
                              "nets were not layer lists: train it again with scripts/fit.py (the original's net is "
                              "the default; the CNNs are lit_mnist/configs/cnn.yaml and cnn_fast.yaml)")
    try:
        model = LitMNIST.load_from_checkpoint(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, TypeError, ValueError, KeyError) as e:  # a LayerError is a ValueError too
        raise CheckpointError(f"{path}: a checkpoint of another model ({' '.join(str(e).split())[:200]})") from None
    return model.eval()


def check_resumable(path: str | Path, model: LitMNIST) -> None:
    """A checkpoint that ``fit.py --ckpt_path`` may continue: a full Lightning checkpoint (read as untrusted
    input) whose network has ``model``'s layers and shapes; else a one-line error before anything trains."""
    checkpoint = read_checkpoint(path)
    if "optimizer_states" not in checkpoint or "loops" not in checkpoint:
        raise CheckpointError(f"{path}: holds the weights alone (save_weights_only), not a run's state to continue; "
                              "predict.py and export.py can use it")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("net.")}
    found = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    if found != expected:
        differ = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        where = differ[0]
        detail = (f"{where} is {found[where]} there, {expected[where]} here" if where in found and where in expected
                  else f"{where} {'only there' if where in found else 'missing there'}")
        raise CheckpointError(f"{path}: a checkpoint of another network than the one the options describe ({detail}); "
                              "give the options of the run it continues")


def start_from(model: LitMNIST, path: str | Path) -> None:
    """Start ``model``'s net from a lit-mnist checkpoint's net weights (read as untrusted input), layer by layer, by
    name and shape; a head of another class count stays as initialised, with a warning. The model's hyper-parameters
    then record the start in ``source`` (what it was, and the source of that) and no longer name ``init_from``: a
    checkpoint of the model does not read the start again.

    The commands call it for ``--model.init_from`` once the model is built (``lit_mnist.apps.cli``): the model's
    constructor reads no file."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") or {}
    try:  # the heads pair up by their place, whatever their names (the output layer is appended from the data)
        their_head = resolve(hparams.get("layers"), hparams.get("num_classes", 10), hparams.get("image_shape", (28, 28)))[-1]
    except LayerError as e:
        raise LayerError(f"--model.init_from {path}: not a lit-mnist checkpoint of a layer list ({e})") from None
    net = model.net
    our_head = net.layers[-1].name

    def ours_of(key: str) -> str:  # their net's key (``dense_3.weight``) as ours, the head renamed
        layer, variable = key.split(".", 1)
        return f"{our_head if layer == their_head.name else layer}.{variable}"

    theirs = {ours_of(key[len("net."):]): value for key, value in checkpoint["state_dict"].items()
              if key.startswith("net.")}
    ours = net.state_dict()
    head = [name for name in ours if name.startswith(f"{our_head}.")]
    differ = [k for k in ours if k not in theirs or theirs[k].shape != ours[k].shape]
    if differ and not set(differ) <= set(head) or set(theirs) - set(ours):
        where = differ[0] if differ else min(set(theirs) - set(ours))
        raise LayerError(f"--model.init_from {path}: its net is not this one ({where} differs); give the layers it "
                         "was trained with")
    net.load_state_dict({k: v for k, v in theirs.items() if k not in differ}, strict=False)
    if differ:
        warnings.warn(f"--model.init_from {path}: its head has {theirs[head[0]].shape[0]} classes, this data "
                      f"{ours[head[0]].shape[0]}: the head ({net.layers[-1].name}) starts afresh", stacklevel=2)
    state = checkpoint.get(KEY)
    if isinstance(state, dict) and isinstance(state.get("slots"), dict):  # its slots by our parameters' names
        state = {**state, "slots": {f"net.{ours_of(key[len('net.'):])}" if key.startswith("net.") else key: slots
                                    for key, slots in state["slots"].items()}}
    carried = _optimizer_state(model, path, state, bool(differ))
    started = {"checkpoint": str(path), "head_reinitialised": bool(differ),
               "hyper_parameters": {k: v for k, v in hparams.items() if k in ("num_classes", "image_shape", "source")}}
    if state is not None:  # whether an imported optimizer's state was taken on
        started["optimizer_state"] = carried
    model.hparams.update(init_from=None, source={"init_from": started, "source_of_that": model.hparams.get("source")})


def _optimizer_state(model: LitMNIST, path, state, head_reinitialised: bool) -> bool:
    """Hand an imported Keras optimizer's state (``KEY``: its step count and slots) to ``model``, for its optimizer
    to go on from, as Keras's ``load_model`` then ``fit`` does; where it cannot (another optimizer is trained, or
    the head starts afresh), the optimizer starts at step 0 and a line says why. Whether it was handed over."""
    if not isinstance(state, dict):
        return False
    from lit_mnist.model import optimizers

    name = optimizers.parse_optimizer(model.hparams.optimizer)[0]
    why = (f"its optimizer state is {state.get('optimizer')}'s, and this run trains with {name}"
           if state.get("optimizer") != name else "the head starts afresh" if head_reinitialised else None)
    if why is not None:
        warnings.warn(f"--model.init_from {path}: {why}: the optimizer starts afresh (step 0, zero slots)",
                      stacklevel=3)
        return False
    ours = dict(model.named_parameters())
    slots = state.get("slots")
    steps = state.get("iterations")
    if not isinstance(steps, int) or steps < 0 or not isinstance(slots, dict) or any(k not in ours or not isinstance(v, dict) for k, v in slots.items()) or any(
            not isinstance(t, torch.Tensor) or t.shape != ours[k].shape for k, v in slots.items() for t in v.values()):
        raise CheckpointError(f"{path}: its {KEY} does not fit the net (a step count that is not one, or a slot "
                              "of another parameter or shape)")
    model.optimizer_state = state
    return True
