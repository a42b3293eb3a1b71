"""The performance harness of prepmeet: ``python -m bench`` (``--quick``, ``--smoke``).

It starts everything it measures itself (a ``prepmeet serve`` on a fresh data directory, the
ceiling apps, a PostgreSQL database of its own when a server answers), drives load through
the public HTTP API, and writes ``bench/results/<date>-<host>.json``.
"""
