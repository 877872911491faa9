"""Train the original Keras model's Lightning twin, then test it: python scripts/fit.py --help"""

from lit_mnist.cli import main
from lit_mnist.entry import run

if __name__ == "__main__":
    run(main)
