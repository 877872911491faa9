"""The Keras twin of a layer list: Keras 3 on the TensorFlow backend, compiled and trained as the original.

TensorFlow matters: with a softmax output, Keras on TF computes the cross-entropy from the logits
(as LitMNIST does); the torch and JAX backends clip probabilities instead. Inputs are raw 0-255
pixels, ``(N, H*W*C)`` (each pixel's channels in turn), as the original's; a ``Normalization`` layer first when the twin normalises.
Each item of the list becomes the Keras layer it names, with its arguments and its name, so that the
two nets' layers pair up by name (``parity/transfer.py``). A chain becomes a ``keras.Sequential``; a list that
branches and joins, a Functional ``keras.Model`` whose layers are called on the outputs their items' ``inputs`` name.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import TYPE_CHECKING

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's kernels, which torch calls too: TensorFlow turns them on by itself only on CPUs with AVX-512 or
# AMX; on AVX2 its own (Eigen) convolutions are slower (docs/performance.md)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras
import numpy as np
import tensorflow as tf

from lit_mnist.model import optimizers
from lit_mnist.model.layers import INPUT, Layer
from lit_mnist.model.net import is_chain

if TYPE_CHECKING:
    from parity.twins import Twins

EPOCHS, BATCH_SIZE, VALIDATION_SPLIT = 15, 500, 0.2  # the original notebook's fit()
# the independent trainings run this many steps per graph call (tf.while_loop): the same updates in the
# same order, with less time in Python between a small net's steps (a test shows equal weights)
STEPS_PER_EXECUTION = 32
PIXEL_NORMALIZATION = "pixel_normalization"  # the layer that standardises inputs (LitMNIST's normalize)


def keras_layer(layer: Layer, init: str = "keras", logits: bool = False) -> keras.layers.Layer:
    """The Keras layer an item names, with its arguments and name; the head ends in softmax, as the original's
    output (LitMNIST's net returns the logits whose softmax that is), or with ``logits`` in the logits.
    ``init="torch"``: PyTorch's default initialisation of kernels and biases, U(+-1/sqrt(fan_in)), for Dense
    and Conv2D."""
    args = layer.spec.keras_args(layer)
    if layer.head:
        args["activation"] = "linear" if logits else "softmax"
    if init == "torch" and layer.spec.torch_init:  # the kinds whose kernel and bias PyTorch's defaults draw
        fan_in = layer.input_shape[-1] * np.prod(args.get("kernel_size", 1))
        bound = float(fan_in) ** -0.5
        args["kernel_initializer"] = args["bias_initializer"] = keras.initializers.RandomUniform(-bound, bound)
    if keras.config.floatx() == "float64":
        args = _orthogonal_in_float64(args)
    return getattr(keras.layers, layer.keras_class)(**args, name=layer.name)


def _orthogonal_in_float64(args: dict) -> dict:
    """Keras's OrthogonalRegularizer keeps its factor as a tensor of Python's float (float32 on TensorFlow), which
    cannot multiply a float64 kernel's penalty: made here with a float64 factor, the same value."""
    def made(value):
        if isinstance(value, dict) and value.get("class_name") == "OrthogonalRegularizer":
            config = value["config"]
            return keras.regularizers.OrthogonalRegularizer(np.float64(config["factor"]), config["mode"])
        return value
    return {key: made(value) if key.endswith("_regularizer") else value for key, value in args.items()}


def build(twins: Twins, seed: int, steps_per_epoch: int | None = None, steps_per_execution: int = 1,
          dtype: str = "float32") -> keras.Model:
    """The twin of ``twins.lightning()``, compiled with the same optimizer, schedule and loss, computing in
    ``dtype``: float32, as the original, or float64 (the teacher-forced steps).

    In float32 the net ends in softmax and Keras (on TensorFlow) takes the cross-entropy from the softmax's
    logits, as the original computes. In float64 Keras loses those logits on the way to the loss and would
    clip probabilities instead, so there the net ends in the logits and the loss takes them: the same function.
    Layers are made after seeding: Keras's initialisers draw their seeds when constructed. ``steps_per_epoch``
    sizes a learning-rate schedule (None: the constant rate, for the levels that take single steps)."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"the reference must run on the TensorFlow backend, not {keras.backend.backend()}")
    with _dtype_policy(dtype):
        return _build(twins, seed, steps_per_epoch, steps_per_execution, logits=dtype != "float32")


@contextlib.contextmanager
def _dtype_policy(dtype: str):
    """Keras's global dtype policy and float type set while a model is built and compiled: its layers, optimizer
    and loss take them then. (A loss of another float type than the model's output casts that output, and the
    cast loses the softmax's logits: the cross-entropy is then taken of clipped probabilities.)"""
    previous, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy(dtype)
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
        keras.config.set_floatx(floatx)


def _build(twins: Twins, seed: int, steps_per_epoch: int | None, steps_per_execution: int,
           logits: bool) -> keras.Model:
    keras.utils.set_random_seed(seed)
    options = twins.options
    first = []
    if twins.pixel_stats is not None:
        mean, std = (np.tile(np.asarray(v, np.float64), math.prod(twins.image_shape[:2])) for v in twins.pixel_stats)
        first = [keras.layers.Normalization(mean=mean, variance=std**2, name=PIXEL_NORMALIZATION)]  # per channel
    resolved = twins.layers
    layers = [keras_layer(layer, options.get("init", "keras"), logits) for layer in resolved]
    row = math.prod(twins.image_shape)  # each pixel's channels in turn
    if is_chain(resolved):
        model = keras.Sequential([keras.Input(shape=(row,)), *first, *layers])
    else:
        model = _functional(keras.Input(shape=(row,), name=INPUT), first, resolved, layers)
    model.compile(optimizer=_optimizer(options, _learning_rate(options, steps_per_epoch, twins.epochs)), loss=_loss(options, logits), metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    model.optimizer.build(model.trainable_variables)  # create m, v now so they can be read before step 1
    return model


def _functional(inputs, first: list[keras.layers.Layer], resolved: list[Layer],
                layers: list[keras.layers.Layer]) -> keras.Model:
    """The Functional model of a list that branches: ``first`` (the pixel normalisation, if any) on the input,
    then each layer called on the outputs its item's ``inputs`` name (a merge layer on the list of them; ``input``
    is the model's input after ``first``), in the list's order; the output is the last layer's (the head). The
    model's input is named ``input``, a name no item may take, so that every other name is the item's own."""
    outputs = {INPUT: inputs}
    for layer in first:
        outputs[INPUT] = layer(outputs[INPUT])
    for item, layer in zip(resolved, layers):
        taken = [outputs[name] for name in item.inputs]
        outputs[item.name] = layer(taken if item.spec.merge else taken[0])
    return keras.Model(inputs, outputs[resolved[-1].name])


_KERAS_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "nadam": "Nadam",
                     "adamax": "Adamax", "adagrad": "Adagrad", "adadelta": "Adadelta", "lion": "Lion"}
_KERAS_SCHEDULES = {"exponential_decay": "ExponentialDecay", "piecewise_constant_decay": "PiecewiseConstantDecay",
                    "cosine_decay": "CosineDecay", "cosine_decay_restarts": "CosineDecayRestarts",
                    "inverse_time_decay": "InverseTimeDecay", "polynomial_decay": "PolynomialDecay"}


def _optimizer(options: dict, learning_rate) -> keras.optimizers.Optimizer:
    """Keras's optimizer of the Lightning side's ``optimizer`` item, with its arguments (Keras's own names)."""
    name, args = optimizers.parse_optimizer(options.get("optimizer", "adam"))
    if name not in _KERAS_OPTIMIZERS:
        raise ValueError(f"optimizer {name}: Keras has no twin of it")
    args = {k: v for k, v in args.items() if k != "learning_rate"}
    return getattr(keras.optimizers, _KERAS_OPTIMIZERS[name])(learning_rate, **args)


def _loss(options: dict, logits: bool):
    """The original's sparse cross-entropy, or with label smoothing the categorical one (on one-hot targets:
    Keras's sparse cross-entropy has no label smoothing)."""
    smoothing = options.get("label_smoothing", 0.0)
    if smoothing:
        return keras.losses.CategoricalCrossentropy(from_logits=logits, label_smoothing=smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)


def targets(twins: Twins, y: np.ndarray) -> np.ndarray:
    """The labels as the twin's loss takes them: as they are, or one-hot where it smooths them."""
    if twins.options.get("label_smoothing", 0.0):
        return np.eye(twins.num_classes, dtype=np.float32)[y]
    return y.astype(np.int64)


def _learning_rate(options: dict, steps_per_epoch: int | None, epochs: int):
    """The item's learning rate as Keras's: a number, or Keras's schedule of the same arguments (the fit's step
    counts resolved); without ``steps_per_epoch``, constant: the schedule's starting (or peak) rate."""
    item = options.get("optimizer", "adam")
    fit = None if steps_per_epoch is None else optimizers.Fit(steps_per_epoch, steps_per_epoch * epochs)
    plan = optimizers.lr_schedule(item, fit)
    if plan is None:
        return optimizers.learning_rate(item)
    if fit is None:  # the schedule's own rate (its start, its peak), constant
        start = next((plan.args[key] for key in ("initial_learning_rate", "max_lr") if key in plan.args), None)
        return plan.args["values"][0] if start is None else start
    args = plan.resolved()
    if plan.name == "one_cycle":
        return OneCycle(args["max_lr"], args["total_steps"], args["pct_start"], args["div_factor"],
                        args["final_div_factor"])
    return getattr(keras.optimizers.schedules, _KERAS_SCHEDULES[plan.name])(**args)


def fit(model: keras.Model, twins: Twins, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
        seed: int = 0, callbacks: list | None = None) -> float:
    """Seconds of the original ``fit``: ``twins.epochs`` epochs of ``twins.batch_size``, the validation rows
    evaluated after every ``twins.validation_freq``-th epoch, the training rows reshuffled every epoch, as the
    unseeded notebook's ``fit(shuffle=True)`` does.

    Seeded (``build``), Keras's own shuffle would replay one permutation in every epoch (it draws it with
    ``tf.random.shuffle`` inside a tf.data map, which a graph-level seed resets for each epoch's iterator).
    So the rows come from a pipeline of their indices, shuffled with ``seed`` and reshuffled on every pass
    (tf.data's ``reshuffle_each_iteration``): a new order each epoch, the same orders in every run of a seed.
    Each batch is gathered from the arrays; one ``fit`` call runs all epochs, as the notebook's, with
    ``callbacks`` (Keras's own, parity/callbacks.py) and the twins' class weights (``Twins.class_weight``).
    """
    x, y = train
    images, labels = tf.constant(x, tf.float32), tf.constant(targets(twins, y))
    rows = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    batches = rows.batch(twins.batch_size).map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))
    validation = (val[0].astype(np.float32), targets(twins, val[1])) if len(val[0]) else None
    start = time.perf_counter()
    model.fit(batches, epochs=twins.epochs, shuffle=False, validation_data=validation,
              validation_freq=twins.validation_freq, callbacks=callbacks, class_weight=twins.class_weight(y), verbose=0)
    return time.perf_counter() - start


def fit_as_notebook(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[keras.callbacks.History, float]:
    """The notebook's own call, ``fit(epochs=15, batch_size=500, validation_split=0.2)``: what the benchmark
    times (seeded, its epochs share one order; the speed is the same)."""
    start = time.perf_counter()
    history = model.fit(x.astype(np.float32), y.astype(np.int64), epochs=EPOCHS, batch_size=BATCH_SIZE,
                        validation_split=VALIDATION_SPLIT, verbose=0)
    return history, time.perf_counter() - start


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=BATCH_SIZE, verbose=0)


def layer_weights(model: keras.Model) -> dict[str, dict[str, np.ndarray]]:
    """Every layer's variables (kernel, bias, gamma, beta, moving_mean, moving_variance, ...) by layer and
    variable name, as numpy arrays in Keras's layout."""
    return {layer.name: {v.name: np.array(v.numpy()) for v in layer.weights} for layer in model.layers}


def assign(model: keras.Model, weights: dict[str, dict[str, np.ndarray]]) -> None:
    """Set the named layers' variables (``layer_weights``'s form) in the Keras model."""
    for layer_name, variables in weights.items():
        by_name = {v.name: v for v in model.get_layer(layer_name).weights}
        for name, value in variables.items():
            by_name[name].assign(value)


# every per-variable slot of Keras 3's optimizers (``add_optimizer_variables``'s names): Adam's, AMSGrad's,
# RMSprop's (centred too), SGD's, Nadam's, Adamax's, Adagrad's, Adadelta's, Lion's
SLOTS = ("momentum", "velocity", "velocity_hat", "average_gradient", "norm", "accumulator", "accumulated_grad",
         "accumulated_delta_var")


def optimizer_slots(model: keras.Model) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The optimizer's slots of every trainable variable (``SLOTS``: Adam's ``momentum`` and ``velocity``,
    AMSGrad's ``velocity_hat``, Adagrad's ``accumulator``, ...), by layer, variable and slot name. Keras has no
    public accessor for one variable's slots; its optimizer's variables are public, and each is named after the
    model variable's path and the slot. The path differs with the model's kind: a Sequential builds its layers
    inside its own name scope (``sequential/dense/kernel`` -> ``sequential_dense_kernel_momentum``), a Functional
    model's layers are built where they are called, outside any (``dense/kernel`` -> ``dense_kernel_momentum``);
    the path is read, not assumed. A slot that pairs with no model variable is an error: its state would otherwise
    be silently lost."""
    by_name = {v.name: np.array(v.numpy()) for v in model.optimizer.variables}
    # the optimizer's own values, not per-variable slots (optimizer_scalars)
    unpaired = set(by_name) - {"iteration", "learning_rate"} - {v.name for v in _scalar_variables(model.optimizer)}
    slots: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for layer in model.layers:
        for v in layer.trainable_weights:
            key = v.path.replace("/", "_")
            found = {slot: f"{key}_{slot}" for slot in SLOTS if f"{key}_{slot}" in by_name}
            unpaired -= set(found.values())
            slots.setdefault(layer.name, {})[v.name] = {slot: by_name[name] for slot, name in found.items()}
    if unpaired:
        raise RuntimeError(f"the optimizer's slots {sorted(unpaired)} pair with no variable of the model's layers")
    return slots


def _scalar_variables(optimizer: keras.optimizers.Optimizer) -> list:
    # Nadam's product of momentum factors is an unnamed variable of its own (nadam.py's ``_u_product``)
    return [optimizer._u_product] if isinstance(optimizer, keras.optimizers.Nadam) else []


def optimizer_scalars(model: keras.Model) -> dict[str, float]:
    """The optimizer-wide values a step reads besides its count and rate, by the name the torch optimizer keeps
    them under in each param group: Nadam's ``u_product``; none for the others."""
    scalars = _scalar_variables(model.optimizer)
    return {"u_product": float(scalars[0].numpy())} if scalars else {}


def iterations(model: keras.Model) -> int:
    return int(model.optimizer.iterations.numpy())


def learning_rate(model: keras.Model) -> float:
    """The rate of the next step (a schedule's value at the optimizer's step count)."""
    return float(np.asarray(model.optimizer.learning_rate))


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """torch's ``OneCycleLR`` (its defaults: 30% warm-up from ``peak / 25``, cosine both ways, down to
    ``peak / 25 / 1e4``), step for step: Keras asks at the step count before each update, as torch's is. Computed
    in float64, as torch's in Python floats (in float32 the cosine's cancellation near the low end is off by
    ~5e-4 relative), and given as float32, as Keras's own schedules give theirs."""

    def __init__(self, peak: float, total_steps: int, warmup: float = 0.3, div: float = 25.0, final_div: float = 1e4):
        self.peak, self.total_steps, self.warmup, self.div, self.final_div = peak, total_steps, warmup, div, final_div

    def __call__(self, step):
        step = tf.cast(step, tf.float64)
        start, low = self.peak / self.div, self.peak / self.div / self.final_div
        turn = float(self.warmup * self.total_steps) - 1

        def anneal(a, b, fraction):
            return b + (a - b) / 2 * (tf.cos(np.pi * fraction) + 1)
        up = anneal(start, self.peak, step / turn)
        down = anneal(self.peak, low, (step - turn) / (self.total_steps - 1 - turn))
        return tf.cast(tf.where(step <= turn, up, down), tf.float32)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup, "div": self.div,
                "final_div": self.final_div}
