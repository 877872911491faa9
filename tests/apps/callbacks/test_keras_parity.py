"""The same metric sequences fed to Keras's own callbacks and to the items: the same decisions, epoch by epoch."""

import numpy as np
import pytest

from tests.apps.callbacks.harness import LR, drive, f32
from tests.apps.callbacks.test_csv_logger import ROWS
from tests.apps.callbacks.test_early_stopping import CASES
from tests.apps.callbacks.test_reduce_lr_on_plateau import COOLDOWN, MIN_DELTA, MIN_LR, PATIENCE
from tests.conftest import require_the_parity_extra

pytestmark = pytest.mark.parity

CLASSES = {"reduce_lr_on_plateau": "ReduceLROnPlateau", "early_stopping": "EarlyStopping", "csv_logger": "CSVLogger",
           "model_checkpoint": "ModelCheckpoint"}


def keras_drive(items, rows):
    """Keras's callbacks over ``rows``: (rates after each epoch, stop epoch, the epoch whose weights are held)."""
    require_the_parity_extra()
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse", metrics=["accuracy"])
    model.fit(np.zeros((2, 1)), np.zeros((2, 1)), verbose=0)  # builds the metrics that mode auto reads
    callbacks = []
    for item in items:
        (name, args), = item.items()
        args = args if isinstance(args, dict) else {"filename": args}
        callbacks.append(getattr(keras.callbacks, CLASSES[name])(**args))
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    lrs, stopped = [], None
    model.stop_training = False
    for epoch, row in enumerate(rows):
        model.set_weights([np.full((1, 1), epoch, dtype="float32")])
        logs = {k: f32(v) for k, v in row.items()}
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        lrs.append(float(model.optimizer.learning_rate.numpy()))
        if model.stop_training:
            stopped = epoch
            break
    for callback in callbacks:
        callback.on_train_end()
    return lrs, stopped, float(model.get_weights()[0][0, 0])


@pytest.mark.parametrize("case", [COOLDOWN, MIN_DELTA, PATIENCE, MIN_LR], ids=["cooldown", "min_delta", "patience",
                                                                              "min_lr"])
def test_reduce_lr_on_plateau_lowers_the_rate_as_keras(case):
    item, rows, _ = case
    assert drive([item], rows)[0].lrs == keras_drive([item], rows)[0]


@pytest.mark.parametrize("case", CASES)
def test_early_stopping_stops_and_restores_as_keras(case):
    item, rows, _, _ = CASES[case]
    ours = drive([item], rows)[0]
    _, stopped, weights_of = keras_drive([item], rows)
    assert (ours.stopped, ours.weights_of) == (stopped, weights_of)


def test_csv_logger_writes_kerass_bytes(tmp_path):
    items = [{"reduce_lr_on_plateau": {"patience": 5}}, {"csv_logger": str(tmp_path / "ours.csv")}]
    drive(items, ROWS)
    keras_drive([items[0], {"csv_logger": str(tmp_path / "keras.csv")}], ROWS)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "keras.csv").read_bytes()
