"""Speed and memory benchmarks: each module prints its figures when run (``python -m benchmarks.NAME``)."""
