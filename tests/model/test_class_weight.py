"""Keras's ``fit(class_weight=...)``: each training row's loss weighted by its class's, the sum over the number
of rows (not over the sum of the weights, as torch's ``weight=``); accuracy and the evaluation losses unweighted."""

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST, class_weights

WEIGHTS = [2.0, 0.5, 1.0]


def _batch():
    torch.manual_seed(0)
    return torch.randint(0, 256, (12, 16)).float(), torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 0])


def _module():
    module = LitMNIST(layers=[{"dense": 8}], num_classes=3, image_shape=(4, 4), class_weight={0: 2.0, 1: 0.5})
    module._class_weights = torch.tensor(class_weights(module.hparams.class_weight, 3, module.class_names, None))
    return module


def test_the_training_loss_is_keras_s_weighted_mean_over_rows():
    module, (x, y) = _module(), _batch()
    rows = F.cross_entropy(module.logits(x), y, reduction="none")
    keras = (torch.tensor(WEIGHTS)[y] * rows).sum() / len(y)
    torch.testing.assert_close(module.train().compute_loss((x, y))[0], keras)


def test_torch_s_weight_normalisation_fails_the_check():
    """The companion: torch's weight= divides by the sum of the rows' weights."""
    module, (x, y) = _module(), _batch()
    torch_s = F.cross_entropy(module.logits(x), y, weight=torch.tensor(WEIGHTS))
    assert not torch.allclose(module.train().compute_loss((x, y))[0], torch_s)


def test_evaluation_is_unweighted():
    module, (x, y) = _module(), _batch()
    loss, _per_row, _ = module.eval().compute_loss((x, y))
    torch.testing.assert_close(loss, F.cross_entropy(module.logits(x), y))


def test_balanced_is_scikit_learn_s_and_a_class_without_rows_weighs_one():
    y = np.array([0, 0, 0, 1, 2, 2, 2, 2, 2, 2])
    counts = np.bincount(y, minlength=4).tolist()  # class 3 has no rows
    ours = class_weights("balanced", 4, ["a", "b", "c", "d"], counts)
    # scikit-learn over the classes present, with the count of classes lit-mnist has (rows / (4 * count))
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 2]), y=y) * 3 / 4
    assert ours[:3] == pytest.approx(expected.tolist()) and ours[3] == 1.0


def test_a_mapping_by_label_or_by_class_name_and_a_class_left_out_weighs_one():
    names = ["cat", "dog", "eel"]
    assert class_weights({"dog": 3.0}, 3, names, None) == [1.0, 3.0, 1.0]
    assert class_weights({2: 0.5}, 3, names, None) == [1.0, 1.0, 0.5]
    assert class_weights({"1": 4.0}, 3, ["0", "1", "2"], None) == [1.0, 4.0, 1.0]
    with pytest.raises(ValueError, match=r"^class_weight: 'cow' is not a class of the data \(labels 0-2, names cat"):
        class_weights({"cow": 1.0}, 3, names, None)


@pytest.mark.parametrize("value, expected", [("balance", "class_weight must be 'balanced' or a mapping"),
                                             ({0: "x"}, "class_weight 0: a weight must be a number of at least 0")])
def test_a_bad_class_weight_is_one_line(value, expected):
    with pytest.raises(ValueError, match="^" + expected):
        LitMNIST(class_weight=value)


def test_a_fit_takes_balanced_weights_from_the_training_split(write_csv):
    csv = write_csv(n=200, classes=[0, 0, 0, 1, 2])
    datamodule = MNISTDataModule(path=str(csv), batch_size=40)
    module = LitMNIST(layers=[{"dense": 8}], class_weight="balanced", num_classes=3)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, datamodule=datamodule)
    counts = datamodule.class_counts("train")
    assert module._class_weights.tolist() == pytest.approx([sum(counts) / (3 * c) for c in counts])
