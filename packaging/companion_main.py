"""Entry point of the PyInstaller app: the ``companion`` command line.

Why a separate file: PyInstaller needs a script, and ``freeze_support`` must run
first so that the ``spawn`` worker processes (indexer, page renderer) start as
workers instead of as a second copy of the app.
"""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from companion.cli import main

    raise SystemExit(main())
