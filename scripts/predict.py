"""Apply a trained model: python scripts/predict.py --checkpoint CKPT --input PATH [PATH ...] --output FILE"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.predict")
