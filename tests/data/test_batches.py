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


def _flat(loader):
    return [b for group in loader for b in group]


def test_groups_hand_out_the_same_batches_in_the_same_order():
    x, y = torch.arange(23).unsqueeze(1), torch.arange(23)
    single = TensorBatches(x, y, 3, shuffle=True, seed=5)
    grouped = TensorBatches(x, y, 3, shuffle=True, seed=5, group=3)
    groups = list(grouped)
    assert [len(g) for g in groups] == [3, 3, 2] and len(grouped) == 3 and grouped.steps() == len(single) == 8
    assert [b.tolist() for _, b in _flat(groups)] == [b.tolist() for _, b in single]
    assert grouped.steps(2) == 6 and grouped.steps(5) == 8


def test_a_grouped_pass_resumes_at_the_batch_after_the_last_group():
    x, y = torch.arange(23).unsqueeze(1), torch.arange(23)
    whole = [b.tolist() for _, b in _flat(TensorBatches(x, y, 3, shuffle=True, group=3))]
    loader = TensorBatches(x, y, 3, shuffle=True, group=3)
    passing = iter(loader)
    next(passing)
    assert loader.state_dict() == {"taken": 3}  # batches, not groups: a resume may group otherwise
    again = TensorBatches(x, y, 3, shuffle=True, group=2)
    again.load_state_dict(loader.state_dict())
    assert [b.tolist() for _, b in _flat(again)] == whole[3:]


def test_a_rank_groups_its_shares_of_the_global_batches():
    x, y = torch.arange(10).unsqueeze(1), torch.arange(10)
    (first, second), = [g for g in TensorBatches(x, y, 4, rank=1, world_size=2, group=2)][:1]
    assert [b.tolist() for b in first[1:2]] == [[2, 3]] and first[2] == 4 and second[1].tolist() == [6, 7]
