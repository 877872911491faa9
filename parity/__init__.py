"""The parity suite: the original Keras model, trained on the same arrays, compared at three levels.

Only this package imports TensorFlow; ``lit_mnist`` never does.
"""
