"""LitMNIST's reported epoch figures are Keras's: means over the epoch's samples (batches weighted by size)."""

import lightning as L
import torch
import torch.nn.functional as F

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST, WeightedMean


def test_epoch_loss_and_accuracy_weight_batches_by_size():
    torch.manual_seed(0)
    module = LitMNIST()
    x, y = torch.randint(0, 256, (34, 784)).float(), torch.randint(0, 10, (34,))
    batches = [(x[:30], y[:30]), (x[30:], y[30:])]  # a full batch and a partial last batch, as Keras keeps
    module.on_train_epoch_start()
    losses = [module.loss_and_sums(batch).detach() for batch in batches]
    loss_sum, correct, rows = module._train_totals
    expected = (losses[0] * 30 + losses[1] * 4) / 34
    mean = WeightedMean()
    mean.update(loss_sum, rows)
    torch.testing.assert_close(mean.compute(), expected)
    assert not torch.isclose(expected, (losses[0] + losses[1]) / 2)  # the unweighted mean would differ
    with torch.no_grad():
        assert correct == (module.net(x).argmax(1) == y).sum() and rows == 34


def test_loss_is_cross_entropy_on_logits():
    torch.manual_seed(0)
    module = LitMNIST()
    x, y = torch.randint(0, 256, (8, 784)).float(), torch.randint(0, 10, (8,))
    loss = module.loss_and_sums((x, y))
    torch.testing.assert_close(loss, F.cross_entropy(module.net(x), y))


def test_weighted_mean_combines_parts_exactly():
    mean = WeightedMean()
    mean.update(torch.tensor(6.0), 3)
    mean.update(torch.tensor(1.0), torch.tensor(1.0))
    assert mean.compute() == 7 / 4


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
                                          "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros"}}
    assert hp["image_shape"] == [10, 10] and hp["num_classes"] == 12 and module.class_names[-1] == "L"
    again = LitMNIST(**hp)
    assert [tuple(p.shape) for p in again.parameters()] == [tuple(p.shape) for p in module.parameters()]
