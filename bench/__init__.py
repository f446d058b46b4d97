"""sixpod benchmarks: one module per benchmark, each with ``run() -> dict``."""
