"""Benchmarks: ``python -m bench NAME`` runs one and prints one JSON line of figures.

Rates end in ``_per_s``, times in ``_ms``, comparisons are ``ratio_...``; the figure the issue
names comes first. Benchmarks use their own database (``var/bench.sqlite3`` unless
``DATABASE_URL`` says otherwise) and never touch the development data.
"""
