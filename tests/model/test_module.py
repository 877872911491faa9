"""LitMNIST's training: epoch figures as Keras reports them (means over samples, batches weighted by size), and
the same steps whether the datamodule hands batches one at a time or in groups (steps_per_execution)."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST


@pytest.mark.filterwarnings("ignore:You are trying to `self.log()`")  # logged with no Trainer here
def test_epoch_loss_and_accuracy_weight_batches_by_size():
    torch.manual_seed(0)
    module = LitMNIST()
    x, y = torch.randint(0, 256, (34, 784)).float(), torch.randint(0, 10, (34,))
    batches = [(x[:30], y[:30]), (x[30:], y[30:])]  # a full batch and a partial last batch, as Keras keeps
    module.on_train_epoch_start()
    losses = [module.loss_and_sums(batch).detach() for batch in batches]
    _, correct, rows = module._train_totals
    module.on_train_epoch_end()  # hands the epoch's sums to the metrics Lightning logs
    expected = (losses[0] * 30 + losses[1] * 4) / 34
    torch.testing.assert_close(module.train_loss.compute(), expected)
    assert not torch.isclose(expected, (losses[0] + losses[1]) / 2)  # the unweighted mean would differ
    with torch.no_grad():
        assert correct == (module.net(x).argmax(1) == y).sum() and rows == 34
        torch.testing.assert_close(module.train_acc.compute(), correct / 34)


def test_loss_is_cross_entropy_on_logits():
    torch.manual_seed(0)
    module = LitMNIST()
    x, y = torch.randint(0, 256, (8, 784)).float(), torch.randint(0, 10, (8,))
    loss = module.loss_and_sums((x, y))
    torch.testing.assert_close(loss, F.cross_entropy(module.net(x), y))


def test_evaluation_means_weight_every_row_alike_and_keep_a_nan():
    """Validation and test figures are means over rows, whatever the batches; a diverged loss reads nan, as in
    Keras, rather than the mean of the rows that stayed finite (torchmetrics' default drops NaNs)."""
    torch.manual_seed(0)
    module = LitMNIST(num_classes=3, image_shape=(2, 2), layers=[])
    x, y = torch.randn(7, 4), torch.randint(0, 3, (7,))
    module._evaluate((x[:5], y[:5]), "val")
    module._evaluate((x[5:], y[5:]), "val")
    per_row = F.cross_entropy(module.logits(x), y, reduction="none")
    torch.testing.assert_close(module.val_loss.compute(), per_row.mean())
    module._evaluate((torch.full((1, 4), float("nan")), y[:1]), "val")
    assert torch.isnan(module.val_loss.compute())
    dropping = MeanMetric()  # the companion: torchmetrics' default would report the finite rows' mean
    with pytest.warns(UserWarning, match="nan"):
        dropping.update(torch.tensor([1.0, float("nan")]))
    assert dropping.compute() == 1.0


def test_the_test_rows_come_back_in_order_with_their_probabilities():
    torch.manual_seed(0)
    module = LitMNIST(num_classes=3, image_shape=(2, 2), layers=[])
    x, y = torch.randn(7, 4), torch.randint(0, 3, (7,))
    module.on_test_epoch_start()
    for rows in (slice(0, 5), slice(5, 5), slice(5, 7)):  # an empty batch (one that evens out the ranks) counts nothing
        module.test_step((x[rows], y[rows]), 0)
    probs, targets = module.test_outputs()
    torch.testing.assert_close(probs, module(x))
    assert torch.equal(targets, y) and targets.dtype == torch.long


def test_each_epoch_logs_its_own_figures(write_csv, tmp_path):
    """The logged epoch figures cover that epoch alone: the training sums restart at each epoch, and Lightning
    computes and resets the metric objects at each epoch's end."""
    module = LitMNIST(lr=1e-2)
    totals = []
    end = module.on_train_epoch_end

    def spy():
        loss_sum, correct, rows = module._train_totals.tolist()
        totals.append((loss_sum / rows, correct / rows))
        end()

    module.on_train_epoch_end = spy
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=MNISTDataModule(path=str(write_csv(n=400)), batch_size=32))
    assert len(totals) == 3 and len({acc for _, acc in totals}) > 1  # the epochs differ, so a running total would show
    logged = trainer.callback_metrics
    torch.testing.assert_close(logged["train/acc"].cpu(), torch.tensor(totals[-1][1]))
    torch.testing.assert_close(logged["train/loss"].cpu(), torch.tensor(totals[-1][0]))
    for metric in (module.train_acc, module.train_loss, module.val_acc, module.val_loss):
        assert metric.update_count == 0  # reset by Lightning after logging


def test_the_module_uses_nn_modules_own_attribute_handling():
    assert "__setattr__" not in vars(LitMNIST)  # no shortcut around Lightning's or torch's bookkeeping


def test_the_hyper_parameters_are_plain_data_describing_the_whole_net():
    module = LitMNIST(layers=[{"conv2d": {"filters": 4, "kernel_size": 3}}, "flatten"], num_classes=12,
                      image_shape=(10, 10), class_names=[chr(65 + k) for k in range(12)])
    hp = dict(module.hparams)
    assert hp["layers"][0] == {"conv2d": {"filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
                                          "activation": "linear", "use_bias": True,
                                          "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
                                          **dict.fromkeys(("kernel_regularizer", "bias_regularizer",
                                                           "activity_regularizer", "kernel_constraint",
                                                           "bias_constraint"))}}
    assert hp["image_shape"] == [10, 10] and hp["num_classes"] == 12 and module.class_names[-1] == "L"
    again = LitMNIST(**hp)
    assert [tuple(p.shape) for p in again.parameters()] == [tuple(p.shape) for p in module.parameters()]


def _fit(csv, steps_per_execution, module_class=LitMNIST, max_steps=-1, **options):
    """(global step, net weights, epoch figures, final learning rate) of 3 epochs on ``csv`` in batches of 40."""
    L.seed_everything(0, verbose=False)
    module = module_class(**{"layers": [{"dense": 16}], **options})
    trainer = L.Trainer(max_epochs=3, max_steps=max_steps, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=MNISTDataModule(path=str(csv), batch_size=40,
                                                   steps_per_execution=steps_per_execution))
    figures = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return trainer.global_step, module.net.state_dict(), figures, trainer.optimizers[0].param_groups[0]["lr"]


def _same_training(a, b) -> bool:
    return (a[0] == b[0] and a[2] == b[2] and a[3] == b[3]
            and all(torch.equal(value, b[1][name]) for name, value in a[1].items()))


BRANCHES = [{"dense": {"units": 16, "name": "a"}}, {"dense": {"units": 16, "inputs": "input", "name": "b"}},
            {"add": {"inputs": ["a", "b"]}}]


ONE_CYCLE = {"adam": {"learning_rate": {"one_cycle": {"max_lr": 1e-2}}}}
PER_EPOCH = {"adam": {"learning_rate": {"exponential_decay": {"initial_learning_rate": 1e-3, "decay_steps": "epoch",
                                                              "decay_rate": 0.5, "staircase": True}}}}


@pytest.mark.parametrize("options", [{}, {"optimizer": ONE_CYCLE}, {"optimizer": PER_EPOCH}, {"layers": BRANCHES}],
                         ids=["chain", "one cycle", "per epoch", "graph"])
def test_steps_per_execution_is_the_same_training(write_csv, options):
    """Groups of 3 batches (7 an epoch: 3, 3, 1) and one group an epoch take the very steps single batches take,
    the one-cycle schedule included (its length counts optimizer steps, not groups), and an epoch's steps (a
    decay per epoch) too, a graph's as a chain's."""
    csv = write_csv(n=400)
    single = _fit(csv, 1, **options)
    assert single[0] == 21
    assert _same_training(single, _fit(csv, 3, **options))
    assert _same_training(single, _fit(csv, 100, **options))


class FirstOfEachGroup(LitMNIST):
    """A model that takes one step per group, as a loop over the group that stopped early would."""

    def training_step(self, batch, batch_idx):
        return super().training_step(batch[:1] if isinstance(batch, list) else batch, batch_idx)


def test_the_comparison_catches_a_group_whose_batches_are_not_all_stepped(write_csv):
    csv = write_csv(n=400)
    assert not _same_training(_fit(csv, 1), _fit(csv, 3, FirstOfEachGroup))


def test_max_steps_stops_inside_a_group(write_csv):
    csv = write_csv(n=400)
    single = _fit(csv, 1, max_steps=9)  # groups of 3, 3, 1 | 3, ...: the fourth cut to 2
    assert single[0] == 9 and _same_training(single, _fit(csv, 3, max_steps=9))


def test_the_rate_is_logged_under_keras_s_name_the_next_step_s_after_each_epoch(write_csv):
    """As Keras's history records ``learning_rate``: the optimizer's rate after the epoch (constant, or the
    schedule's at the step count reached: three epochs of 7 steps, halved each epoch)."""
    csv = write_csv(n=400)
    assert _fit(csv, 1)[2]["learning_rate"] == pytest.approx(1e-3)
    assert _fit(csv, 1, optimizer=PER_EPOCH)[2]["learning_rate"] == pytest.approx(1e-3 * 0.5**3)
