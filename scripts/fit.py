"""Train the original Keras model's Lightning twin, then test it: python scripts/fit.py --help"""

import sys

from lit_mnist.cli import main

if __name__ == "__main__":
    sys.exit(main())
