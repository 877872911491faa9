"""Import a trained Keras model as a lit-mnist checkpoint: python scripts/import_keras.py --help"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.import_keras")
