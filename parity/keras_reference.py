"""The original notebook's model, exactly, and its CNN twin: Keras 3 on the TensorFlow backend.

TensorFlow matters: with a softmax output, Keras on TF computes the cross-entropy from the logits
(as LitMNIST does); the torch and JAX backends clip probabilities instead. Inputs are raw 0-255
pixels, ``(N, 784)``, as the original's; a ``Normalization`` layer first when the twin normalises.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's kernels, which torch calls too: TensorFlow turns them on by itself only on CPUs with AVX-512 or
# AMX; on AVX2 its own (Eigen) convolutions train the CNN ~1.2x and predict ~1.8x slower
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras
import numpy as np
import tensorflow as tf

EPOCHS, BATCH_SIZE, VALIDATION_SPLIT = 15, 500, 0.2
# the independent trainings run this many steps per graph call (tf.while_loop): the same updates in the
# same order, with ~30% less time in Python between the dense net's small steps (a test shows equal weights)
STEPS_PER_EXECUTION = 32


def _layers(arch: str, channels: tuple[int, int] = (16, 32), init=lambda fan_in: {},
            stem: str = "pool") -> list[keras.layers.Layer]:
    """The original Dense 128/64/128/10, or ``ConvNet``'s twin: channels-last, each pooling block pooling
    before its ReLU as ``ConvNet`` does, the first block pooling or striding as its ``stem``, Keras's default
    padding ("valid") and pooling strides; ``init(fan_in)``: a layer's initialiser arguments (default:
    Keras's, Glorot-uniform kernels and zero biases)."""
    if arch == "dense":
        return [keras.layers.Dense(128, activation="relu"), keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    if arch == "cnn":
        c1, c2 = channels
        # only the chosen stem is built: every layer built draws a seed for its initialiser
        if stem == "pool":
            first = [keras.layers.Conv2D(c1, 5, **init(25)), keras.layers.MaxPooling2D(2)]
        elif stem == "stride":
            first = [keras.layers.Conv2D(c1, 5, strides=2, **init(25))]
        else:
            raise ValueError(f"no Keras twin for stem {stem!r}")
        return [keras.layers.Reshape((28, 28, 1)), *first, keras.layers.ReLU(),
                keras.layers.Conv2D(c2, 5, **init(25 * c1)), keras.layers.MaxPooling2D(2), keras.layers.ReLU(),
                keras.layers.Flatten(),  # lays out (h, w, c): transfer.py permutes for torch's (c, h, w)
                keras.layers.Dense(128, activation="relu", **init(16 * c2)),
                keras.layers.Dense(10, activation="softmax", **init(128))]
    raise ValueError(f"no Keras twin for arch {arch!r}")


def build_model(seed: int, arch: str = "dense", pixel_stats: tuple[float, float] | None = None,
                steps_per_execution: int = 1, stem: str = "pool") -> keras.Model:
    """The twin of ``LitMNIST(arch=arch, stem=stem)``, compiled as the original; ``pixel_stats`` (mean, std of
    the training pixels) standardise the inputs first, as ``LitMNIST(normalize=True)`` does;
    ``steps_per_execution``: Keras's, the training steps ``fit`` runs in one graph call (the original: 1)."""
    model = _sequential(seed, pixel_stats, lambda: _layers(arch, stem=stem))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    model.optimizer.build(model.trainable_variables)  # create m, v now so they can be read before step 1
    return model


def _sequential(seed: int, pixel_stats: tuple[float, float] | None, layers) -> keras.Model:
    """The layers ``layers()`` returns, on (N, 784) inputs, after a ``Normalization`` layer when ``pixel_stats``
    are given. ``layers`` is called after seeding: Keras's initialisers draw their seeds when constructed."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"the reference must run on the TensorFlow backend, not {keras.backend.backend()}")
    keras.utils.set_random_seed(seed)
    first = []
    if pixel_stats is not None:
        mean, std = pixel_stats
        first = [keras.layers.Normalization(mean=mean, variance=std**2)]
    return keras.Sequential([keras.Input(shape=(784,)), *first, *layers()])


def fit(model: keras.Model, x: np.ndarray, y: np.ndarray, seed: int = 0,
        epochs: int = EPOCHS) -> tuple[keras.callbacks.History, float]:
    """The original ``fit``: 15 epochs, batch 500, the last 20% validating, the training rows reshuffled every
    epoch, as the unseeded notebook's ``fit(shuffle=True)`` does.

    Seeded (``build_model``), Keras's own shuffle would replay one permutation in every epoch (it draws it
    with ``tf.random.shuffle`` inside a tf.data map, which a graph-level seed resets for each epoch's
    iterator). So the rows come from a pipeline of their indices, shuffled with ``seed`` and reshuffled on
    every pass (tf.data's ``reshuffle_each_iteration``): a new order each epoch, the same orders in every run
    of a seed. Each batch is gathered from the arrays; one ``fit`` call runs all epochs, as the notebook's
    (a call per epoch took ~1.5x as long: each builds its iterators and data adapter anew).
    """
    (x_train, y_train), validation = training_rows(x, y, with_validation=True)
    images, labels = tf.constant(x_train, tf.float32), tf.constant(y_train, tf.int64)
    rows = tf.data.Dataset.range(len(x_train)).shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
    batches = rows.batch(BATCH_SIZE).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    start = time.perf_counter()
    history = model.fit(batches, epochs=epochs, shuffle=False, validation_data=validation, verbose=0)
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


def weights(model: keras.Model) -> list[np.ndarray]:
    """The trainable weights in layer order (kernel, bias, ...): a Normalization layer's constants are not."""
    return [np.array(v.numpy()) for v in model.trainable_variables]


def state(model: keras.Model) -> dict[str, list[np.ndarray] | int]:
    """Trainable weights and Adam's moments, in layer order (kernel, bias, ...), plus the step count."""
    opt = model.optimizer
    variables = model.trainable_variables
    return {
        "weights": [np.array(v.numpy()) for v in variables],
        "m": [np.array(opt._momentums[opt._get_variable_index(v)].numpy()) for v in variables],
        "v": [np.array(opt._velocities[opt._get_variable_index(v)].numpy()) for v in variables],
        "step": int(opt.iterations.numpy()),
    }


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """torch's ``OneCycleLR`` (its defaults: 30% warm-up from ``peak / 25``, cosine both ways, down to
    ``peak / 25 / 1e4``), step for step: Keras asks at the step count before each update, as torch's is."""

    def __init__(self, peak: float, total_steps: int, warmup: float = 0.3, div: float = 25.0, final_div: float = 1e4):
        self.peak, self.total_steps, self.warmup, self.div, self.final_div = peak, total_steps, warmup, div, final_div

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        start, low = self.peak / self.div, self.peak / self.div / self.final_div
        turn = float(self.warmup * self.total_steps) - 1
        def anneal(a, b, fraction):
            return b + (a - b) / 2 * (tf.cos(np.pi * fraction) + 1)
        up = anneal(start, self.peak, step / turn)
        down = anneal(self.peak, low, (step - turn) / (self.total_steps - 1 - turn))
        return tf.where(step <= turn, up, down)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup, "div": self.div,
                "final_div": self.final_div}


def build_recipe_model(seed: int, options: dict, pixel_stats: tuple[float, float], steps: int) -> keras.Model:
    """A recipe's CNN in Keras (``options``: its LitMNIST arguments, such as channels, stem, init, lr, betas,
    epsilon, one_cycle, label_smoothing), compiled with the same optimizer, schedule and loss (one-hot
    labels: Keras's sparse cross-entropy has no label smoothing). ``steps``: the optimizer steps of the fit."""
    init = _torch_init if options.get("init") == "torch" else lambda fan_in: {}
    channels = tuple(options.get("channels", (16, 32)))
    model = _sequential(seed, pixel_stats, lambda: _layers("cnn", channels, init, options.get("stem", "pool")))
    lr = OneCycle(options["lr"], steps) if options.get("one_cycle") else options.get("lr", 1e-3)
    beta_1, beta_2 = options.get("betas", (0.9, 0.999))
    epsilon = options.get("epsilon", 1e-7)
    model.compile(optimizer=keras.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=options.get("label_smoothing", 0.0)),
                  metrics=["accuracy"])
    return model


def _torch_init(fan_in: int) -> dict:
    """PyTorch's default initialisation of Conv2d/Linear: weights and biases uniform in +-1/sqrt(fan_in)."""
    bound = fan_in ** -0.5
    return {"kernel_initializer": keras.initializers.RandomUniform(-bound, bound),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound)}


def fit_recipe(model: keras.Model, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
               epochs: int, batch_size: int, validation_freq: int = 1) -> float:
    """Seconds of ``model.fit`` (validation after every ``validation_freq``-th epoch, as Lightning's
    ``check_val_every_n_epoch``), with Keras's own shuffle: seeded, it replays one order every epoch (see
    ``fit``), which leaves the speed, the figure wanted here, the same."""
    x, y = train
    onehot = np.eye(10, dtype=np.float32)
    start = time.perf_counter()
    model.fit(x.astype(np.float32), onehot[y], epochs=epochs, batch_size=batch_size, verbose=0,
              validation_freq=validation_freq, validation_data=(val[0].astype(np.float32), onehot[val[1]]) if len(val[0]) else None)
    return time.perf_counter() - start
