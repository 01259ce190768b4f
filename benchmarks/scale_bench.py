"""The pool at scale: N farmers through the devnet, one backend and one pooler.

    .venv/bin/python -m benchmarks.scale_bench [--farmers 1000] [--ledger-seconds 2]
        [--block-interval 120] [--blocks 2] [--threads 1] [--json]

Mainnet closes about 60 ledgers per block (5 s ledgers, 300 s blocks); the default runs
the same ratio faster (2 s ledgers, 120 s blocks). Everything is real: PostgreSQL
(embedded, or a fresh database on ``KALEPOOL_DATABASE__URL``), the devnet over HTTP
JSON-RPC (in this process, wall clock), ``kalepool backend serve`` and ``kalepool pooler
run --blocks K`` as child processes, set up the way ``kalepool demo`` does (the farmers
register, are funded and confirmed through the API).

Printed per block: planted / worked / harvested (from the backend's event tables), the
plant fan-out (the pooler's plant-request until it had every farmer planted), the margin
between the ledger that applied the block's last work and the block becoming ripe (its
start + the interval: after that any plant closes the block), and whether journal and
chain reconcile. Per process (backend, pooler, PostgreSQL, the devnet: this process),
CPU seconds per farmer-block over the blocks, and peak RSS. The pooler's CPU includes
its mining threads (``--threads``), which mine until each block's final time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from kalepool.demo.cluster import Cluster
from kalepool.demo.runner import build_report, run_blocks, setup_pool, wait_harvested


@dataclass
class Usage:
    """CPU seconds and peak RSS of a set of processes, sampled while they run."""

    cpu: float = 0.0
    peak_rss: int = 0
    _last: dict[int, float] = field(default_factory=dict)

    def sample(self, processes: Iterable[psutil.Process]) -> None:
        rss = 0
        for proc in processes:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total = times.user + times.system
            self.cpu += max(0.0, total - self._last.get(proc.pid, total))
            self._last[proc.pid] = total
        self.peak_rss = max(self.peak_rss, rss)

    def start(self, processes: Iterable[psutil.Process]) -> None:
        """Count from now on (what ran before is the set-up)."""
        for proc in processes:
            try:
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self._last[proc.pid] = times.user + times.system
        self.cpu = 0.0


class Sampler:
    """Samples each part's processes every ``period`` seconds on a thread."""

    def __init__(self, cluster: Cluster, period: float = 0.5) -> None:
        self.cluster = cluster
        self.period = period
        self.usage = {name: Usage() for name in ("backend", "pooler", "postgres", "devnet")}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-sampler", daemon=True)

    def parts(self) -> dict[str, list[psutil.Process]]:
        me = psutil.Process()
        backend = self._known([self.cluster.backend.pid] if self.cluster.backend else [])
        poolers = self._known([p.process.pid for p in self.cluster.poolers if p.process is not None])
        postgres = [
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if (p.info["name"] or "").startswith("postgres") and self._ours(p)
        ]
        return {"backend": backend, "pooler": poolers, "postgres": postgres, "devnet": [me]}

    def _known(self, pids: list[int]) -> list[psutil.Process]:
        """The processes of these pids (the same object each time; gone ones left out)."""
        found = []
        for pid in pids:
            proc = self._procs.get(pid)
            if proc is None:
                try:
                    proc = self._procs[pid] = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    continue
            found.append(proc)
        return found

    def _ours(self, proc: psutil.Process) -> bool:
        """A server of this run (the embedded one under the work directory), or any
        server when the run uses an external PostgreSQL (then shared: an upper bound)."""
        if self.cluster.external_database:
            return True
        try:
            return any(str(self.cluster.work_dir) in part for part in proc.cmdline()) or any(
                str(self.cluster.work_dir) in part for part in proc.parent().cmdline()
            )
        except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
            return False

    def start(self) -> None:
        for name, procs in self.parts().items():
            self.usage[name].start(procs)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for name, procs in self.parts().items():
                self.usage[name].sample(procs)

    def stop(self) -> dict[str, Usage]:
        self._stop.set()
        self._thread.join(timeout=5)
        for name, procs in self.parts().items():
            self.usage[name].sample(procs)
        return self.usage


@dataclass
class BlockFigures:
    block_index: int
    planted: int
    worked: int
    harvested: int
    fan_out_seconds: float | None
    last_work_margin_seconds: float | None  # ripe time minus the close time of the last work's ledger
    works_after_ripe: int


def block_figures(
    cluster: Cluster, report: Any, ledgers: dict[int, int], interval: int
) -> list[BlockFigures]:
    """Per block: the report's counts, the pooler's fan-out and the last work's margin."""
    events = [e for p in cluster.poolers for e in p.events]
    asked: dict[int, float] = {}
    planted_at: dict[int, float] = {}
    starts: dict[int, int] = {}
    last_work: dict[int, int] = {}
    for e in events:
        name, index = e.get("event"), e.get("block_index")
        if index is None:
            continue
        stamp = _stamp(e)
        if name == "pooler.plant_request" and not e.get("retry") and stamp is not None:
            asked.setdefault(index, stamp)
        elif name == "pooler.planted" and stamp is not None:
            planted_at[index] = stamp
            if e.get("block_start") is not None:
                starts[index] = int(e["block_start"])
        elif name == "pooler.work_applied" and e.get("ledger") is not None:
            last_work[index] = max(last_work.get(index, 0), int(e["ledger"]))
    rows = []
    for b in report.blocks:
        # a plant-request asked for the next block while the current was ripe lands here
        ask = asked.get(b.index, asked.get(b.index - 1))
        fan_out = planted_at[b.index] - ask if b.index in planted_at and ask is not None else None
        margin = None
        late = 0
        if b.index in starts and b.index in last_work and last_work[b.index] in ledgers:
            ripe = starts[b.index] + interval
            margin = ripe - ledgers[last_work[b.index]]
            late = sum(
                1
                for e in events
                if e.get("event") == "pooler.work_applied"
                and e.get("block_index") == b.index
                and ledgers.get(int(e.get("ledger", 0)), 0) >= ripe
            )
        rows.append(
            BlockFigures(b.index, b.planted, b.worked, b.harvested, _round(fan_out), _round(margin), late)
        )
    return rows


def _stamp(event: dict[str, Any]) -> float | None:
    value = event.get("timestamp")
    if value is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    cluster = Cluster(
        block_interval=args.block_interval,
        ledger_seconds=args.ledger_seconds,
        work_dir=Path(args.work_dir) / time.strftime("scale-%Y%m%d-%H%M%S") if args.work_dir else None,
        # the backend's own defaults for its workers (the demo runs them every few seconds)
        backend_env={
            "KALEPOOL_LOG_LEVEL": "WARNING",
            "KALEPOOL_BACKEND__HARVEST_INTERVAL": "30",
            "KALEPOOL_BACKEND__RECONCILE_INTERVAL": "300",
            "KALEPOOL_BACKEND__AUTO_HARVEST_LAG_BLOCKS": "1",
        },
    )
    ledgers: dict[int, int] = {}  # sequence -> close time, for every ledger closed
    problems: list[str] = []
    try:
        print(f"starting PostgreSQL, the devnet and the backend ({args.farmers} farmers)", flush=True)
        await asyncio.to_thread(cluster.start_database)
        devnet = cluster.start_devnet()
        devnet.engine.on_close.append(lambda info: ledgers.__setitem__(info.sequence, info.close_time))
        await asyncio.to_thread(cluster.start_backend)
        pool = await setup_pool(cluster, farmers=args.farmers, poolers=1, progress=_progress(started))
        setup_seconds = time.monotonic() - started
        sampler = Sampler(cluster)
        run_started = time.monotonic()
        try:
            problems += await run_blocks(
                pool,
                blocks=args.blocks,
                threads=args.threads,
                progress=_progress(started),
                timeout=(args.blocks + 3) * args.block_interval * 2 + 120,
                on_started=sampler.start,
            )
            await wait_harvested(pool, timeout=2 * args.block_interval + 30)
        finally:
            usage = sampler.stop()
        run_seconds = time.monotonic() - run_started
        report = await build_report(pool, blocks_wanted=args.blocks, problems=problems, started=started)
        await pool.close()
        figures = block_figures(cluster, report, ledgers, args.block_interval)
    finally:
        await asyncio.to_thread(cluster.stop)
    farmer_blocks = max(1, args.farmers * args.blocks)
    return {
        "farmers": args.farmers,
        "ledger_seconds": args.ledger_seconds,
        "block_interval": args.block_interval,
        "ledgers_per_block": round(args.block_interval / args.ledger_seconds, 1),
        "blocks": [asdict(f) for f in figures],
        "reconciled": report.reconciled,
        "problems": report.problems,
        "setup_seconds": round(setup_seconds, 1),
        "run_seconds": round(run_seconds, 1),
        "cpu_ms_per_farmer_block": {k: round(1000 * u.cpu / farmer_blocks, 2) for k, u in usage.items()},
        "cpu_seconds": {k: round(u.cpu, 1) for k, u in usage.items()},
        "peak_rss_mb": {k: round(u.peak_rss / 2**20) for k, u in usage.items()},
        "held": report.ok
        and all(f.planted == f.worked == f.harvested == args.farmers for f in figures)
        and all(f.works_after_ripe == 0 for f in figures),
    }


def _progress(started: float) -> Any:
    def say(text: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s {text}", flush=True)

    return say


def print_figures(result: dict[str, Any]) -> None:
    print(
        f"\nscale: {result['farmers']} farmers, {result['ledger_seconds']:g} s ledgers, "
        f"{result['block_interval']} s blocks ({result['ledgers_per_block']:g} ledgers per block)"
    )
    print("  block  planted  worked  harvested  fan-out s  last work before ripe s  works after ripe")
    for b in result["blocks"]:
        print(
            f"  {b['block_index']:>5}  {b['planted']:>7}  {b['worked']:>6}  {b['harvested']:>9}  "
            f"{_cell(b['fan_out_seconds']):>9}  {_cell(b['last_work_margin_seconds']):>23}  "
            f"{b['works_after_ripe']:>16}"
        )
    print(f"  reconciled (journal = chain): {result['reconciled']}")
    per = result["cpu_ms_per_farmer_block"]
    print("  CPU ms per farmer-block: " + ", ".join(f"{k} {v:g}" for k, v in per.items()))
    print("  CPU seconds: " + ", ".join(f"{k} {v:g}" for k, v in result["cpu_seconds"].items()))
    print("  peak RSS MB: " + ", ".join(f"{k} {v}" for k, v in result["peak_rss_mb"].items()))
    print(f"  set-up {result['setup_seconds']:g} s, blocks {result['run_seconds']:g} s")
    for problem in result["problems"]:
        print(f"  problem: {problem}")
    print(f"  held: {result['held']}")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--farmers", type=int, default=1000)
    parser.add_argument("--ledger-seconds", type=float, default=2.0)
    parser.add_argument("--block-interval", type=int, default=120)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="the pooler's mining threads")
    parser.add_argument("--work-dir", default=None, help="keep the processes' logs here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_figures(result)
    return 0 if result["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
