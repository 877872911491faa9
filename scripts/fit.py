"""Train the original Keras model's Lightning twin, then test it: python scripts/fit.py --help"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.fit")
