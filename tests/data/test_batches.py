import torch

from lit_mnist.data.batches import TensorBatches


def test_shuffle_is_a_permutation_seeded_by_epoch():
    x, y = torch.arange(10).unsqueeze(1), torch.arange(10)
    epoch = [0]
    loader = TensorBatches(x, y, 4, shuffle=True, seed=3, epoch=lambda: epoch[0])
    first = torch.cat([b for _, b in loader])
    assert sorted(first.tolist()) == list(range(10)) and len(loader) == 3
    assert torch.equal(first, torch.cat([b for _, b in loader]))  # same epoch, same order (resumable)
    epoch[0] = 1
    assert not torch.equal(first, torch.cat([b for _, b in loader]))  # a new order each epoch


def test_unshuffled_batches_are_in_order():
    x, y = torch.arange(7).unsqueeze(1), torch.arange(7)
    assert [b.tolist() for _, b in TensorBatches(x, y, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
