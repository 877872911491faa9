"""Apply a trained model: python scripts/predict.py --checkpoint CKPT --input PATH [PATH ...] --output FILE"""

import sys

from lit_mnist.predict import main

if __name__ == "__main__":
    sys.exit(main())
