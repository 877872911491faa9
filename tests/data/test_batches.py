import numpy as np
import pytest
import torch

from lit_mnist.data import batches
from lit_mnist.data.batches import HostRows, TensorBatches, resident_fits


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


# Data too large for the device: the same batches gathered from memory-mapped rows

def _mapped(tmp_path, rows: int = 23, width: int = 5):
    array = np.random.default_rng(0).integers(0, 256, (rows, width), dtype=np.uint8)
    np.save(tmp_path / "pixels.npy", array)
    return array, np.load(tmp_path / "pixels.npy", mmap_mode="r")


def _batches(loader):
    return [tuple(t.tolist() if isinstance(t, torch.Tensor) else t for t in batch) for batch in loader]


@pytest.mark.parametrize("options", [{"shuffle": True, "seed": 7}, {}, {"world_size": 2, "rank": 1},
                                     {"world_size": 2, "rank": 0, "shard": "rows"}, {"group": 2, "shuffle": True}])
def test_gathered_batches_are_the_resident_ones(tmp_path, options):
    array, mapped = _mapped(tmp_path)
    index = np.random.default_rng(1).permutation(23)[:19]  # a split: some rows of the file, in another order
    y = torch.arange(19)
    resident = TensorBatches(torch.from_numpy(array[index]), y, 4, **options)
    gathered = TensorBatches(HostRows(mapped, index), y, 4, **options)
    flat = (lambda loader: [b for g in loader for b in g]) if "group" in options else list
    assert _batches(flat(gathered)) == _batches(flat(resident)) and len(gathered) == len(resident)


def test_rows_of_an_array_in_memory_are_indexed_in_order_and_given_back_in_the_order_asked(tmp_path):
    array, mapped = _mapped(tmp_path)
    asked = np.array([9, 2, 17, 0, 2])
    read = []

    class Recording(np.ndarray):
        def __getitem__(self, key):
            read.append(np.asarray(key).tolist())
            return super().__getitem__(key)

    rows = HostRows(mapped.view(Recording))
    assert rows.take(asked).tolist() == array[asked].tolist()
    assert read == [[0, 2, 2, 9, 17]]


def test_without_putting_rows_back_in_order_the_batches_would_differ(tmp_path, monkeypatch):
    """The companion: a gather that returned its rows in file order would pass for the same rows, not batches."""
    array, mapped = _mapped(tmp_path)
    monkeypatch.setattr(HostRows, "take", lambda self, rows: torch.from_numpy(np.asarray(self.array)[np.sort(rows)]))
    y = torch.arange(23)
    resident = TensorBatches(torch.from_numpy(array), y, 4, shuffle=True, seed=7)
    gathered = TensorBatches(HostRows(mapped), y, 4, shuffle=True, seed=7)
    assert [b[0].tolist() for b in gathered] != [b[0].tolist() for b in resident]


def test_host_rows_read_as_a_tensor_for_the_reports(tmp_path):
    array, mapped = _mapped(tmp_path)
    index = np.arange(22, 2, -1)
    rows = HostRows(mapped, index)
    assert len(rows) == 20 and rows.shape == (20, 5) and rows.nbytes == 100
    assert rows[3:6].cpu().tolist() == array[index[3:6]].tolist() and rows[:2].numpy().tolist() == array[[22, 21]].tolist()
    assert rows[torch.tensor([1, 0])].tolist() == array[[21, 22]].tolist()
    assert torch.equal(rows.to("cpu"), torch.from_numpy(array[index]))


def test_host_rows_pickle_as_the_entry_s_path_and_read_the_same_rows(tmp_path):
    import pickle

    array, mapped = _mapped(tmp_path)
    index = np.arange(22, 2, -1)
    rows = HostRows(mapped, index)[2:9]
    data = pickle.dumps(rows)
    assert len(data) < 1024 and array.tobytes()[:40] not in data  # the path and the rows' numbers, no pixels
    again = pickle.loads(data)
    assert again.source is not None and again.take(np.array([0, -1, 3])).tolist() == array[index[2:9][[0, -1, 3]]].tolist()


def test_a_split_s_rows_count_from_its_end_as_a_tensor_s(tmp_path):
    array, mapped = _mapped(tmp_path)
    rows = HostRows(mapped, np.array([5, 9, 2]))
    assert rows[torch.tensor([-1, 0])].tolist() == array[[2, 5]].tolist() and rows[-2:].cpu().tolist() == array[[9, 2]].tolist()


def test_the_budget_is_a_share_of_the_free_memory(monkeypatch):
    monkeypatch.setattr(batches, "free_memory", lambda device: 1000)
    assert resident_fits(100, torch.device("cpu")) and not resident_fits(101, torch.device("cpu"))  # a tenth of RAM
    assert resident_fits(500, torch.device("cuda")) and not resident_fits(501, torch.device("cuda"))  # half a GPU's
    assert resident_fits(900, torch.device("cpu"), share=0.9) and not resident_fits(1, torch.device("cpu"), share=0)
    monkeypatch.setattr(batches, "free_memory", lambda device: None)
    assert resident_fits(10**15, torch.device("mps"))  # unknown: held there, as before


def test_the_machine_s_available_memory_is_known():
    assert 0 < batches.free_memory(torch.device("cpu")) < 1 << 50


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_gathered_batches_are_the_resident_ones_and_come_pinned(tmp_path):
    array, mapped = _mapped(tmp_path)
    y = torch.arange(23)
    resident = TensorBatches(torch.from_numpy(array).cuda(), y.cuda(), 4, shuffle=True, seed=7)
    gathered = TensorBatches(HostRows(mapped), y, 4, shuffle=True, seed=7, device=torch.device("cuda"))
    batches = list(gathered)
    assert all(x.is_pinned() and y.is_pinned() for x, y in batches)  # the permutation drawn on the GPU, as resident
    assert [(x.tolist(), y.tolist()) for x, y in batches] == [(x.tolist(), y.tolist()) for x, y in resident]
