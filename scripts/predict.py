"""Apply a trained model: python scripts/predict.py --checkpoint CKPT --input PATH [PATH ...] --output FILE"""

from lit_mnist.entry import run
from lit_mnist.predict import main

if __name__ == "__main__":
    run(main)
