"""docsync benchmarks (not part of the tests): ``python -m bench.run --help``."""
