"""The original's next steps, measured: python scripts/compare.py --out DIR [--seeds 0 1 2]"""

from lit_mnist.compare import main
from lit_mnist.entry import run

if __name__ == "__main__":
    run(main)
