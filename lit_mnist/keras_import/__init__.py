"""Keras model files read as data (read.py: json and h5py, nothing executed) and turned into a layer list and its
weights (convert.py), for ``scripts/import_keras.py``."""
