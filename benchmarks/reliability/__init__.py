"""Reliability harness: crash consistency (``crash``), a concurrency soak (``soak``) and fuzzed
command-line input (``fuzz``). Each is a script that prints what it did and exits 1 on any
problem; ``tests/reliability`` runs short versions of the same code."""
