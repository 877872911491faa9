"""The original notebook's model, exactly: Keras 3 on the TensorFlow backend, raw 0-255 inputs.

TensorFlow matters: with a softmax output, Keras on TF computes the cross-entropy from the logits
(as LitMNIST does); the torch and JAX backends clip probabilities instead.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

EPOCHS, BATCH_SIZE, VALIDATION_SPLIT = 15, 500, 0.2


def build_model(seed: int) -> keras.Model:
    """Sequential Dense 128/64/128/10 relu/softmax, compiled as the original."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"the reference must run on the TensorFlow backend, not {keras.backend.backend()}")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)  # create m, v now so they can be read before step 1
    return model


def fit(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[keras.callbacks.History, float]:
    """The original ``fit``: 15 epochs, batch 500, Keras's own validation_split and shuffling."""
    start = time.perf_counter()
    history = model.fit(x.astype(np.float32), y.astype(np.int64), epochs=EPOCHS, batch_size=BATCH_SIZE,
                        validation_split=VALIDATION_SPLIT, verbose=0)
    return history, time.perf_counter() - start


def training_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows Keras trains on under ``validation_split``, by Keras's own splitting function."""
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    (x_train, y_train), _ = train_validation_split((x, y), validation_split=VALIDATION_SPLIT)
    return np.asarray(x_train), np.asarray(y_train)


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=BATCH_SIZE, verbose=0)


def state(model: keras.Model) -> dict[str, list[np.ndarray] | int]:
    """Weights and Adam's moments, in ``get_weights`` order (W1, b1, ..., W4, b4), plus the step count."""
    opt = model.optimizer
    variables = model.trainable_variables
    return {
        "weights": [np.array(v.numpy()) for v in variables],
        "m": [np.array(opt._momentums[opt._get_variable_index(v)].numpy()) for v in variables],
        "v": [np.array(opt._velocities[opt._get_variable_index(v)].numpy()) for v in variables],
        "step": int(opt.iterations.numpy()),
    }
