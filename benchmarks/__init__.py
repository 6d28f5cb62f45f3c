"""Speed benchmarks: the project's training path against the tutorial loop and the compute ceiling.

Not part of the test suite (pytest collects `tests/` only); run `python -m benchmarks.compare` or
`python -m benchmarks.decode`.
"""
