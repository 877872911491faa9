"""``python scripts/import_keras.py MODEL.keras --out model.ckpt [--check data.csv]``: a trained Keras model as a
lit-mnist checkpoint.

Reads a Keras 3 ``.keras`` file or an ``.h5`` saved by Keras 3 or Keras 2 (tf-keras) with json and h5py alone
(no TensorFlow needed, nothing of the file executed), and writes a Lightning checkpoint of the equivalent layer
list, which ``predict.py``, ``export.py`` and ``serve.py`` take like any other and ``fit.py --model.init_from``
starts from, with the layer list beside it as a config for ``fit.py --config`` (``model.yaml`` for
``model.ckpt``; with the optimizer the model was compiled with, where lit-mnist has it). Preprocessing done outside the Keras model (``x / 255``: ``--input-scale 0.00392156862745098``)
goes into the checkpoint, which takes values 0-255 like every other (grey levels, or a colour model's R, G, B).

``--check data.csv`` (with TensorFlow, the ``[parity]`` extra): Keras itself and the new model predict the CSV's
rows; every layer's largest difference (in one layout) and the probabilities' are printed, and the checkpoint is
written only if the probabilities are at most 1e-4 apart and every predicted class agrees (but on rows whose two
best probabilities are closer than that); otherwise exit 1, nothing written.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import lightning
import numpy as np
import torch
import yaml

from lit_mnist import atomic
from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.data import sources
from lit_mnist.errors import DataError
from lit_mnist.keras_import.compiled import compile_options
from lit_mnist.keras_import.convert import Imported, convert
from lit_mnist.keras_import.for_keras import for_keras
from lit_mnist.keras_import.optimizer_state import KEY, optimizer_state
from lit_mnist.keras_import.read import MAX_BYTES, KerasFile, read_keras_file
from lit_mnist.model import keras_layout
from lit_mnist.model.layers import LayerError, image_size
from lit_mnist.model.module import LitMNIST

MAX_ABS_DIFF = 1e-4  # the parity suite's forward level


def build(imported: Imported, source: dict, path: Path) -> LitMNIST:
    """The LitMNIST of the imported layer list, with the weights of the file at ``path`` in it."""
    try:
        model = LitMNIST(layers=imported.items, num_classes=imported.num_classes, image_shape=imported.image_shape,
                         source=source)
    except LayerError as e:
        raise DataError(f"{path}: {e}") from None
    try:
        keras_layout.load_weights(model.net, imported.weights)
    except keras_layout.Mismatch as e:
        raise DataError(f"{path}: {imported.where.get(e.layer, e.layer)}: its weights do not fit the layer "
                        f"({e.detail})") from None
    return model.eval()


def check(model: LitMNIST, imported: Imported, keras_file: KerasFile, rows: np.ndarray, scale: float | None,
          offset: float, max_bytes: int = MAX_BYTES) -> dict:
    """Keras's every layer's output against the net's, on ``rows`` (grey levels 0-255), and the probabilities'."""
    keras_rows = rows.astype(np.float32) * (1.0 if scale is None else scale) + offset  # the preprocessing outside
    keras_rows = keras_rows.reshape(len(rows), *imported.input_shape)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "rows.npy", keras_rows)
        given = for_keras(keras_file, Path(tmp), max_bytes)  # what the importer accepted, and nothing else
        # Keras in a process of its own: only parity/ imports TensorFlow
        done = subprocess.run([sys.executable, "-m", "parity.keras_outputs", str(given),
                               str(Path(tmp) / "rows.npy"), str(Path(tmp) / "out.npz")], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise DataError(f"{keras_file.path}: Keras could not run the model ({done.stderr.strip().splitlines()[-1:]})")
        with np.load(Path(tmp) / "out.npz") as saved:
            theirs = {name: saved[name] for name in saved.files}
    ours = _layer_outputs(model, rows)
    head = model.net.layers[-1]
    if head.args["activation"] == "softmax":  # Keras's last Dense applied the softmax the net leaves to the loss
        ours[head.name] = _softmax(ours[head.name])
    layers = [{"layer": keras_name, "max_abs_diff": float(np.abs(ours[name] - theirs[keras_name]).max())}
              for name, keras_name in imported.keras_names.items()
              if name in ours and keras_name in theirs and ours[name].shape == theirs[keras_name].shape]
    probs = model_probabilities(model, rows)
    final = theirs[_last(theirs)]
    keras_probs = _probabilities(final, imported.output)
    top2 = np.sort(keras_probs, axis=1)[:, -2:]
    ties = (top2[:, 1] - top2[:, 0]) < MAX_ABS_DIFF
    disagree = (probs.argmax(1) != keras_probs.argmax(1)) & ~ties
    max_abs = float(np.abs(probs - keras_probs).max())
    return {"rows": len(rows), "layers": layers, "max_abs_diff": max_abs, "disagreements": int(disagree.sum()),
            "near_ties": int(ties.sum()), "passed": max_abs <= MAX_ABS_DIFF and not disagree.any()}


def _probabilities(final: np.ndarray, output: str) -> np.ndarray:
    """The classes' probabilities from the Keras model's output: softmax, logits, or one sigmoid unit's (1 - p, p)."""
    if output == "softmax":
        return final
    if output == "sigmoid":
        return np.concatenate([1 - final, final], axis=1)
    return _softmax(final)


def _last(outputs: dict) -> str:
    return list(outputs)[-1]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def model_probabilities(model: LitMNIST, rows: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))).numpy()


def _layer_outputs(model: LitMNIST, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each net layer's output, in Keras's layout (an image channels-last)."""
    outputs = {}
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: outputs.__setitem__(name, out))
             for name, module in model.net.named_children()]
    try:
        with torch.inference_mode():
            model.logits(torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: (out.permute(0, 2, 3, 1) if out.dim() == 4 else out).numpy() for name, out in outputs.items()}


def config_text(imported: Imported, source: dict, checkpoint: Path, optimizer: dict | None = None) -> str:
    """The layer list without its output layer, which fit.py appends for the data's classes (its own or others),
    unless the output layer has a regularizer or constraint: then it is kept, so fine-tuning keeps them; and the
    ``optimizer`` options that compile() gave."""
    head_kept = _trains_with(imported.items[-1])
    layers = imported.items if head_kept else imported.items[:-1]
    output = (f"It ends in the model's output layer ({imported.num_classes} classes), whose regularizer or "
              "constraint it keeps:\n# for data of other classes, delete that last item (fit.py appends one)."
              if head_kept else "Its output layer comes from the data.")
    header = (f"# The layers of {source['keras_file']} (sha256 {source['sha256'][:16]}...), imported by "
              f"scripts/import_keras.py. {output}\n"
              f"#   python scripts/fit.py --config THIS.yaml --model.init_from {checkpoint.name}\n"
              "# starts from the imported weights (and the optimizer's saved state, where the import carried it, "
              "as Keras's load_model);\n# without --model.init_from, the same net trains from scratch.\n")
    return header + yaml.safe_dump({"model": {**(optimizer or {}), "layers": layers}}, sort_keys=False)


def _trains_with(item: dict) -> bool:
    """Whether a layer item carries a regularizer or a constraint."""
    (_, args), = item.items()
    return isinstance(args, dict) and any(value is not None for key, value in args.items()
                                          if key.endswith(("_regularizer", "_constraint")))


def state_note(steps: int | None, state: dict | None, why: str | None) -> str | None:
    """What becomes of the optimizer's saved state (its step count and slots): carried into the checkpoint, so
    that ``init_from`` goes on from it as Keras's ``load_model`` then ``fit`` does; or why not."""
    if not steps:
        return None
    if state is not None:
        return (f"its optimizer had taken {steps} steps; carried (the step count and its slots): fit.py "
                "--model.init_from goes on from them with the same optimizer, as Keras's load_model then fit does")
    return (f"its optimizer had taken {steps} steps; {why or 'its slots are not in the file'}: fit.py "
            "--model.init_from starts it afresh (step 0, zero slots)")


def _carried_state(keras_file: KerasFile, item: dict | None, model: LitMNIST) -> tuple[dict | None, str | None]:
    """The optimizer's saved state mapped onto the net, where the file and the carried optimizer allow it."""
    if not item:
        return None, None
    if keras_file.optimizer_variables is None:
        return None, f"an {keras_file.layout} file keeps its slots in another layout: not carried"
    return optimizer_state(keras_file.optimizer_variables, item, model)


def save(model: LitMNIST, imported: Imported, source: dict, out: Path, optimizer: dict | None = None,
         optimizer_state: dict | None = None) -> Path:
    """The checkpoint (weights and hyper-parameters, as Lightning writes a module's; the Keras optimizer's state
    under ``keras_optimizer_state``, where carried) and its config, atomically."""
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning.__version__}
    if optimizer_state is not None:
        checkpoint[KEY] = optimizer_state
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    config = out.with_suffix(".yaml")
    try:
        atomic.write_bytes(out, buffer.getvalue())
        atomic.write_text(config, config_text(imported, source, out, optimizer))
    except OSError as e:
        raise DataError(f"{out}: cannot write the checkpoint ({e.strerror or e})") from None
    return config


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="import_keras.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the Keras model file (.keras, or .h5 of Keras 3 or 2)")
    parser.add_argument("--out", required=True, type=Path, help="the checkpoint to write (its config beside it, .yaml)")
    parser.add_argument("--check", help="a CSV of the model's images (or a folder of class folders, or an .npz): Keras "
                        "and the checkpoint must predict it alike")
    parser.add_argument("--input-scale", "--input_scale", dest="input_scale", type=float,
                        help="the preprocessing done outside the Keras model: x * scale (+ offset), x in 0-255")
    parser.add_argument("--input-offset", "--input_offset", dest="input_offset", type=float, default=0.0,
                        help="added after --input-scale (default 0)")
    parser.add_argument("--image_shape", type=int, nargs="+", metavar="SIZE",
                        help="H W (grey) or H W 3 (colour): the images of a model of flat rows that are not square grey")
    parser.add_argument("--max-bytes", "--max_bytes", dest="max_bytes", type=int, default=MAX_BYTES,
                        help="the largest file, zip member and total of weights read (default %(default)s: 512 MiB)")
    parser.add_argument("--allow-nonfinite", "--allow_nonfinite", dest="allow_nonfinite", action="store_true",
                        help="import weights that hold NaN or infinite values (to inspect such a file)")
    args = parser.parse_args(argv)
    if args.max_bytes < 1:
        raise DataError(f"--max-bytes must be positive, got {args.max_bytes}")
    if args.out.is_dir():
        raise DataError(f"{args.out}: is a folder; give the checkpoint a file name (model.ckpt)")
    if args.check and importlib.util.find_spec("tensorflow") is None:
        raise DataError("--check runs the model in Keras, which needs TensorFlow: pip install -e '.[parity]' "
                        "(or import without --check)")
    if args.image_shape is not None and len(args.image_shape) not in (2, 3):
        raise DataError(f"--image_shape takes H W or H W C, got {len(args.image_shape)} sizes")
    keras_file = read_keras_file(args.model, args.max_bytes)
    imported = convert(keras_file, args.image_shape, args.input_scale, args.input_offset, args.allow_nonfinite)
    source = {"keras_file": keras_file.path.name, "sha256": keras_file.sha256, "layout": keras_file.layout,
              "output": imported.output, "input_scale": args.input_scale, "input_offset": args.input_offset}
    model = build(imported, source, args.model)
    values = math.prod(imported.image_shape)
    print(f"{args.model}: {len(imported.items)} layers, {'x'.join(map(str, imported.image_shape))} images, "
          f"{imported.num_classes} classes, "
          f"ending in {imported.output}")
    for note in _grouped(imported.ignored):
        print(f"  ignored (training only): {note}")
    optimizer, notes = compile_options(keras_file.optimizer, keras_file.loss)
    if optimizer:
        (name, arguments), = optimizer.get("optimizer", {"adam": {}}).items()
        given = ", ".join(f"{key} {value}" for key, value in {**arguments, **optimizer}.items() if key != "optimizer")
        print(f"  compiled with: {name}{f' ({given})' if given else ''}; into the config")
    for note in notes:
        print(f"  compiled with: {note}")
    state, why = _carried_state(keras_file, optimizer.get("optimizer"), model)
    if optimizer.get("optimizer") and state_note(keras_file.optimizer_steps, state, why):
        print(f"  optimizer state: {state_note(keras_file.optimizer_steps, state, why)}")
    verified = "not verified against Keras: --check data.csv (with TensorFlow) does that"
    if args.check:
        # read, not cached: an import writes nothing but its checkpoint and config
        options = ({"labels": "optional", "pixels": values} if sources.kind(args.check) == "csv" else
                   {"split": "test" if sources.has_test_split(args.check) else "train",
                    "image_shape": image_size(imported.image_shape)})
        rows = sources.load(args.check, cache=False, **options).pixels
        result = check(model, imported, keras_file, rows, args.input_scale, args.input_offset, args.max_bytes)
        for layer in result["layers"]:
            print(f"  {layer['layer']:24s} max |diff| {layer['max_abs_diff']:.2e}")
        print(f"check on {result['rows']} rows of {args.check}: probabilities max |diff| {result['max_abs_diff']:.2e} "
              f"(limit {MAX_ABS_DIFF:.0e}); predicted classes differ on {result['disagreements']} "
              f"(not counting {result['near_ties']} rows whose two best classes are near-tied)")
        if not result["passed"]:
            print(f"import FAILED its check: {args.out} not written")
            return 1
        verified = f"verified against Keras on {result['rows']} rows"
    config = save(model, imported, source, args.out, optimizer, state)
    print(f"written: {args.out} and {config}; {verified}")
    return 0


def _grouped(ignored: list[str]) -> list[str]:
    """'layer 1 'dense' (Dense): kernel_initializer, bias_initializer', a line per layer."""
    by_layer: dict[str, list[str]] = {}
    for note in ignored:
        where, what = note.rsplit(": ", 1)
        by_layer.setdefault(where, []).append(what)
    return [f"{where}: {', '.join(whats)}" for where, whats in by_layer.items()]
