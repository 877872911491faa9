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
import tensorflow as tf

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


def fit(model: keras.Model, x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[keras.callbacks.History, float]:
    """The original ``fit``: 15 epochs, batch 500, the last 20% validating, the training rows reshuffled every
    epoch, as the unseeded notebook's ``fit(shuffle=True)`` does.

    Seeded (``build_model``), Keras's own shuffle would replay one permutation in every epoch (it draws it
    with ``tf.random.shuffle`` inside a tf.data map, which a graph-level seed resets for each epoch's
    iterator). So the reference shuffles the row indices itself, with a seeded ``Dataset.shuffle`` that
    draws a new, reproducible order for each epoch, and gathers the rows as Keras's array adapter does.
    """
    (x_train, y_train), validation = training_rows(x, y, with_validation=True)
    rows = tf.constant(x_train.astype(np.float32)), tf.constant(y_train.astype(np.int64))
    order = tf.data.Dataset.range(len(x_train)).shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
    batches = order.batch(BATCH_SIZE).map(lambda idx: (tf.gather(rows[0], idx), tf.gather(rows[1], idx)))
    start = time.perf_counter()
    history = model.fit(batches.prefetch(2), epochs=EPOCHS, validation_data=validation, verbose=0)
    return history, time.perf_counter() - start


def fit_as_notebook(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[keras.callbacks.History, float]:
    """The notebook's own call, ``fit(epochs=15, batch_size=500, validation_split=0.2)``: what the benchmark
    times (seeded, its epochs share one order; the speed is the same)."""
    start = time.perf_counter()
    history = model.fit(x.astype(np.float32), y.astype(np.int64), epochs=EPOCHS, batch_size=BATCH_SIZE,
                        validation_split=VALIDATION_SPLIT, verbose=0)
    return history, time.perf_counter() - start


def training_rows(x: np.ndarray, y: np.ndarray, with_validation: bool = False):
    """The rows Keras trains on under ``validation_split`` (and, if asked, the validation rows, as float32 and
    int64), by Keras's own splitting function."""
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    (x_train, y_train), (x_val, y_val) = train_validation_split((x, y), validation_split=VALIDATION_SPLIT)
    train = np.asarray(x_train), np.asarray(y_train)
    if not with_validation:
        return train
    return train, (np.asarray(x_val, dtype=np.float32), np.asarray(y_val, dtype=np.int64))


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
