"""List or empty the data cache (what later runs memory-map): python scripts/cache.py info|clear [--dir DIR]"""

from lit_mnist.apps.entry import launch

if __name__ == "__main__":
    launch("lit_mnist.apps.cache")
