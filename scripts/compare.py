"""The original's next steps, measured: python scripts/compare.py --out DIR [--seeds 0 1 2]"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.compare")
