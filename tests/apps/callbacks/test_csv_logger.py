"""csv_logger: Keras's text, byte for byte, written atomically."""

from lit_mnist.apps.callbacks import keras_callbacks
from tests.apps.callbacks.harness import drive

ROWS = [{"loss": 0.5, "accuracy": 0.8, "val_loss": 0.25, "val_accuracy": 0.875},
        {"loss": 0.3, "accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.9}]
# Keras: epoch from 0, sorted keys, the float32 values' Python repr, the excel dialect's \r\n; learning_rate is
# a column because reduce_lr_on_plateau comes before it
EXPECTED = ("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\r\n"
            "0,0.800000011920929,0.0010000000474974513,0.5,0.875,0.25\r\n"
            "1,0.8999999761581421,0.0010000000474974513,0.30000001192092896,0.8999999761581421,0.20000000298023224\r\n")


def test_the_history_is_keras_text(tmp_path):
    path = tmp_path / "history.csv"
    drive([{"reduce_lr_on_plateau": {"patience": 5}}, {"csv_logger": str(path)}], ROWS)
    assert path.read_bytes() == EXPECTED.encode()
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]  # no temporary file left beside it


def test_before_reduce_lr_there_is_no_learning_rate_column_and_append_keeps_one_header(tmp_path):
    path = tmp_path / "h.csv"
    drive([{"csv_logger": {"filename": str(path), "separator": ";"}}], ROWS[:1])
    drive([{"csv_logger": {"filename": str(path), "separator": ";", "append": True}}], ROWS[1:])
    assert path.read_text().splitlines() == ["epoch;accuracy;loss;val_accuracy;val_loss",
                                             "0;0.800000011920929;0.5;0.875;0.25",
                                             "0;0.8999999761581421;0.30000001192092896;0.8999999761581421;0.20000000298023224"]


def test_the_mutation_of_dropping_the_learning_rate_column_is_seen(tmp_path):
    path = tmp_path / "history.csv"
    drive([{"csv_logger": str(path)}, {"reduce_lr_on_plateau": {"patience": 5}}], ROWS)  # after it: Keras's too
    assert path.read_bytes() != EXPECTED.encode()


def test_a_bare_name_and_a_class_name_are_items():
    assert [type(c).__name__ for c in keras_callbacks(["terminate_on_nan", {"CSVLogger": "h.csv"}])] == \
        ["KerasTerminateOnNaN", "KerasCSVLogger"]
