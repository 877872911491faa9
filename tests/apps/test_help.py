"""Every option of predict.py and compare.py says what it does, spelt as fit.py spells its own."""

import pytest

from lit_mnist.apps import compare, predict
from tests.apps.test_fit import _described


@pytest.mark.parametrize("command", [predict, compare])
def test_every_option_is_described_and_spelt_with_underscores(command, capsys):
    with pytest.raises(SystemExit) as done:
        command.main(["--help"])
    assert done.value.code == 0
    described = _described(capsys.readouterr().out, ("--",))
    assert len(described) >= 3 and all(described.values()), [k for k, v in described.items() if not v]
    assert not [name for name in described if "-" in name[2:]]
