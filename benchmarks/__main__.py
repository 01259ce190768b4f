"""Run every benchmark in turn, or the ones named: ``python -m benchmarks [miner devnet ...]``.

Each benchmark is also runnable on its own (``python -m benchmarks.miner_bench --help``).
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = {
    "miner": ["benchmarks.miner_bench"],
    "devnet": ["benchmarks.devnet_bench", "--count", "1000"],
    "gateway": ["benchmarks.gateway_bench", "--accounts", "500"],
    "backend": ["benchmarks.backend_bench"],
    "scale": ["benchmarks.scale_bench", "--farmers", "1000"],
    "deployment": ["benchmarks.deployment_bench"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        module, *args = BENCHMARKS[name]
        print(f"== {name}: python -m {module} {' '.join(args)}", flush=True)
        failed += subprocess.call([sys.executable, "-m", module, *args]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
