"""Export a checkpoint to ONNX, checked by ONNX Runtime: python scripts/export.py --checkpoint CKPT --out model.onnx"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.export")
