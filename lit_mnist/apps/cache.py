"""``python scripts/cache.py info|clear [--dir DIR]``: the data cache, listed or emptied.

A file given to ``--data.path`` (a CSV, a folder of images, an ``.npz``) is read once; later runs memory-map the
arrays kept in the cache directory: ``--dir``, else ``$LIT_MNIST_CACHE_DIR``, else ``$XDG_CACHE_HOME/lit-mnist``,
else ``~/.cache/lit-mnist``. An entry whose source has changed is never read again, and is replaced when the
source is next read; ``clear`` deletes every entry (the sources are read again when next used).
"""

from __future__ import annotations

import argparse

from lit_mnist.apps.entry import ArgumentParser
from lit_mnist.data import cache
from lit_mnist.errors import DataError


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="cache.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["info", "clear"], help="info: list the entries; clear: delete them")
    parser.add_argument("--dir", help="the cache directory (as fit.py's --data.cache_dir)")
    args = parser.parse_args(argv)
    folder = cache.cache_dir(args.dir)
    if args.action == "clear":
        try:
            count, freed = cache.clear(folder)
        except OSError as e:
            raise DataError(f"{folder}: cannot be cleared ({e.strerror or e})") from None
        print(f"{folder}: {count} entries deleted, {_mb(freed)} freed")
        return 0
    found = cache.entries(folder)
    for entry in found:
        what = f"{entry.rows:,} rows of {entry.source}" if entry.source else "left by a write that did not finish"
        print(f"{_mb(entry.bytes):>10}  {entry.path.name}  {what}")
    print(f"{folder}: {len(found)} entries, {_mb(sum(e.bytes for e in found))}")
    return 0


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:,.1f} MB"
