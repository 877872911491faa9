"""``python -m parity.keras_outputs MODEL ROWS.npy OUT.npz``: every layer's output of a Keras model file on the rows,
computed by Keras itself (TensorFlow backend), for ``scripts/import_keras.py --check``.

The file is loaded in Keras's safe mode and without its training configuration; the importer has refused
anything that would carry code (a ``Lambda`` layer, a custom class) before it gets here. ``ROWS.npy`` holds the
model's inputs as the model takes them (its preprocessing and input shape applied). ``OUT.npz`` maps each
layer's name to its output.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np


def layer_outputs(model_path: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    outputs = probe.predict(rows, batch_size=1000, verbose=0)
    return {layer.name: np.asarray(out) for layer, out in zip(model.layers, outputs)}


def main(argv: list[str]) -> int:
    model_path, rows_path, out_path = argv
    np.savez(out_path, **layer_outputs(model_path, np.load(rows_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
