"""Checkpoints: written atomically, read as untrusted input.

A checkpoint is a pickle, and unpickling can run code. Loading uses ``torch.load(weights_only=True)``:
tensors and plain containers only, so a file that would execute something is refused and nothing in
it runs.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_mnist import atomic
from lit_mnist.errors import DataError
from lit_mnist.model.module import LitMNIST


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
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if not (magic.startswith((b"PK\x03\x04", b"\x80"))):  # torch.save: a zip, or a raw pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
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
    """A LitMNIST from a checkpoint written by ``scripts/fit.py``, in eval mode on the CPU."""
    checkpoint = read_checkpoint(path)
    accepted = set(inspect.signature(LitMNIST.__init__).parameters) - {"self"}
    hparams = {k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if k in accepted}
    try:
        model = LitMNIST(**hparams)
        keys = model.load_state_dict(checkpoint["state_dict"], strict=False)
        # the network's weights must match exactly; other entries (buffers of later versions) may differ
        missing = [k for k in keys.missing_keys if k.startswith("net.")]
        unexpected = [k for k in keys.unexpected_keys if k.startswith("net.")]
        if missing or unexpected:
            raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        statistics = [k for k in ("pixel_mean", "pixel_std") if k not in checkpoint["state_dict"]]
        if model.hparams.normalize and statistics:  # else the defaults (0, 1) would silently skew every input
            raise RuntimeError(f"normalize=True but no {' or '.join(statistics)} in its state")
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: a checkpoint of another model ({str(e).splitlines()[0][:160]})") from None
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
