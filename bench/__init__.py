"""Benchmarks: the pipeline against the predecessor's algorithm and the machine's limits.

``python -m bench`` (``make bench``) runs every stage in one go and prints the figures that
``BENCHMARKS.md`` holds; ``--quick`` runs the same code at small sizes.
"""
