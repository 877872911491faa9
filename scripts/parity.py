"""Prove the Lightning model is the Keras model: python scripts/parity.py --out DIR [--seeds K]"""

import sys
from pathlib import Path

# This file is named parity.py: put the repository, not scripts/, first so `parity` is the package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("parity.cli")
