"""Serve the model over HTTP, with a draw-a-digit page: python scripts/serve.py --checkpoint CKPT"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.serve")
