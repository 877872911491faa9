"""``python scripts/export.py --checkpoint CKPT --out model.onnx [--check CSV]``

The whole inference of a trained model as one ONNX graph: input ``pixels``, float32 values 0-255 of shape
``[N, H*W*C]`` (the model's HxW image, row-major, each pixel's C channels in turn as Keras flattens an image: grey
levels for a grey model, R, G, B for a colour one; any batch size); output ``probabilities``, ``[N, K]`` for its K
classes. The normalisation of a ``--data.normalize`` model is inside the graph.

Before the file is kept, ONNX Runtime's probabilities are compared with torch's on the rows of
``--check CSV`` (or a folder of class folders, or an ``.npz``; for a 28x28 grey model, by default the official
10,000 MNIST test digits): at most 1e-5 apart, the
same predicted class for every row. Where float32 itself cannot promise 1e-5 (a net on raw 0-255 pixels
has large logits), the limit is twice torch's own float32 rounding on those rows, measured against the
model in float64: two float32 computations of one function differ by about that much, a graph of another
function by far more. A model that fails the check is not written, and the command exits with 1.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path

import numpy as np
import torch

from lit_mnist import atomic
from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.data import mnist, sources
from lit_mnist.errors import DataError
from lit_mnist.model.layers import image_size
from lit_mnist.model.module import LitMNIST

MAX_ABS_DIFF = 1e-5


def documented(model: LitMNIST) -> tuple[str, str]:
    """What the graph's input and output hold, for their doc strings and the command's last line."""
    height, width, *channels = model.image_shape
    outputs = f"class probabilities (softmax), shape [N, {model.num_classes}]"
    if channels:
        return (f"values 0-255 as float32, shape [N, {model.row_size}]: {height}x{width} row-major, each pixel's R, G, "
                "B in turn (Keras's channels-last order)"), outputs
    return f"grey levels 0-255 as float32, shape [N, {model.row_size}]: {height}x{width} row-major, light on dark", outputs


class Inference(torch.nn.Module):
    """Raw pixels in, probabilities out: LitMNIST.forward, normalisation included."""

    def __init__(self, model: LitMNIST) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels)


def export(model: LitMNIST, path: Path) -> None:
    """Write the ONNX graph of ``model`` to ``path``, with a dynamic batch size and documented input/output."""
    import onnx

    example = torch.zeros(2, model.row_size)
    batch = torch.export.Dim("batch", min=1)
    # the exporter's notes on torchvision's operators, which are not used here
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    program = torch.onnx.export(Inference(model).eval(), (example,), dynamo=True, input_names=["pixels"],
                                output_names=["probabilities"], dynamic_shapes={"pixels": {0: batch}}, verbose=False)
    proto = program.model_proto
    inputs, outputs = documented(model)
    kinds = ", ".join(layer.kind for layer in model.net.layers)
    proto.doc_string = f"lit-mnist classifier ({kinds}). Input: {inputs}. Output: {outputs}."
    proto.graph.input[0].doc_string, proto.graph.output[0].doc_string = inputs, outputs
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


def check_digits(csv: str | None, model: LitMNIST) -> tuple[np.ndarray, str]:
    """The rows to check on: a CSV's (labels optional, the model's pixel count), a folder's images or an ``.npz``'s
    (its test arrays where it has them) at the model's image shape, or for a 28x28 grey model built-in MNIST's
    official test digits."""
    if csv:
        split = "test" if sources.has_test_split(csv) else "train"
        return sources.load(csv, split=split, labels="optional", pixels=model.row_size,
                            image_shape=image_size(model.image_shape)).pixels, csv
    if model.image_shape != mnist.IMAGE_SHAPE:
        raise DataError(f"a {'x'.join(map(str, model.image_shape))} model is checked on rows of its own kind: give "
                        "--check CSV (or a folder, or an .npz)")
    return mnist.test_digits("with no --check CSV, the check needs").pixels, "the MNIST test digits"


def compare(model: LitMNIST, path: Path, pixels: np.ndarray) -> dict:
    import onnxruntime

    x = np.ascontiguousarray(pixels, dtype=np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = session.run(["probabilities"], {"pixels": x})[0]
    with torch.inference_mode():
        theirs = model(torch.from_numpy(x)).numpy()
        exact = copy.deepcopy(model).double()(torch.from_numpy(x).double()).numpy()
    rounding = float(np.abs(theirs - exact).max())
    max_abs = float(np.abs(ours - theirs).max())
    agree = int((ours.argmax(1) == theirs.argmax(1)).sum())
    limit = max(MAX_ABS_DIFF, 2 * rounding)
    return {"rows": len(x), "max_abs_diff": max_abs, "argmax_agree": agree, "float32_rounding": rounding,
            "limit": limit, "passed": max_abs <= limit and agree == len(x)}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="export.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by scripts/fit.py")
    parser.add_argument("--out", required=True, type=Path, help="the ONNX file to write (e.g. model.onnx)")
    parser.add_argument("--check", help="a CSV of the model's images to check ONNX Runtime against torch on "
                                        "(default for a 28x28 model: MNIST's test set)")
    args = parser.parse_args(argv)
    if args.out.is_dir():
        raise DataError(f"{args.out}: is a folder; give the ONNX file a name")
    model = load_model(args.checkpoint)
    pixels, source = check_digits(args.check, model)
    try:
        with atomic.atomic_path(args.out) as tmp:
            export(model, tmp)
            result = compare(model, tmp, pixels)
            limit = f"{MAX_ABS_DIFF:.0e}" if result["limit"] == MAX_ABS_DIFF else \
                f"{result['limit']:.1e}, twice torch's own float32 rounding here"
            line = (f"check: ONNX Runtime against torch on {result['rows']} rows ({source}): max |diff| of "
                    f"probabilities {result['max_abs_diff']:.1e} (limit {limit}), the same class for "
                    f"{result['argmax_agree']}/{result['rows']}")
            print(line)
            if not result["passed"]:
                raise _CheckFailed
    except _CheckFailed:
        print(f"export FAILED its check: {args.out} not written")
        return 1
    except OSError as e:
        raise DataError(f"{args.out}: cannot write the model ({e.strerror or e})") from None
    what = "grey levels" if len(model.image_shape) == 2 else "values (each pixel's R, G, B in turn)"
    print(f"written: {args.out} (input 'pixels' [N, {model.row_size}] float32 {what} 0-255; output "
          f"'probabilities' [N, {model.num_classes}])")
    return 0


class _CheckFailed(Exception):
    pass
