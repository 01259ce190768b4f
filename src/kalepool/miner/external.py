"""Running an external miner (e.g. kale-miner on a GPU) behind the :func:`search` interface.

The external program follows kale-miner's command-line convention::

    <command> <block> <base64 entropy> <start nonce> <difficulty> <G address>
              --max-threads N --batch-size B [extra args]

It searches from the start nonce for a hash with at least ``difficulty`` leading zero
hex digits and prints ``{"hash": "<hex>", "nonce": <int>}`` on stdout (other lines, such
as kale-miner's ``[GPU] CUDA`` banner, are ignored: the last JSON object with both keys
is taken). Every answer is verified with pycryptodome; a wrong one raises
:class:`~kalepool.miner.searcher.MinerError`.

An external miner only answers "a nonce with at least d zeros", so :class:`ExternalMiner`
climbs: it asks for ``start_difficulty`` zeros, then for one more than its best, each time
from the nonce after its last answer, until ``target_zeros`` is reached or time runs
out (the running process is then stopped). ``hashes_done`` is the number of nonces the
answers cover (last answer - start + 1): exact for a sequential CPU miner, an estimate
for a GPU miner that works in batches.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kalepool.kale import pow as kale_pow
from kalepool.miner.searcher import MinerError, Solution, default_threads

MAX_START_NONCE = 2**63 - 1  # kale-miner parses the start nonce as a signed 64-bit integer
_JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)


class ExternalMinerError(MinerError):
    """The external miner failed, answered nothing in time, or answered wrongly."""

    code = "external_miner_error"


def parse_answer(stdout: str) -> tuple[int, bytes]:
    """The ``(nonce, hash)`` of the last ``{"hash", "nonce"}`` JSON object in ``stdout``."""
    for text in reversed(_JSON_OBJECT.findall(stdout)):
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and "hash" in data and "nonce" in data:
            try:
                nonce = int(data["nonce"])
                digest = bytes.fromhex(str(data["hash"]))
            except (TypeError, ValueError) as exc:
                raise ExternalMinerError(f"malformed answer {text.strip()!r}: {exc}") from None
            return nonce, digest
    tail = stdout.strip()[-200:]
    raise ExternalMinerError(f'no {{"hash", "nonce"}} JSON answer on stdout (got {tail!r})')


@dataclass
class ExternalMiner:
    """A :class:`~kalepool.miner.searcher.Searcher` that runs an external miner command.

    ``command``: the program and any leading arguments (a list, or a string split like a
    shell would). ``max_threads`` defaults to the ``threads`` a search asks for, else
    every core; ``batch_size`` is passed as ``--batch-size``; ``extra_args`` go last
    (e.g. ``["--gpu", "--device", "0"]``). ``default_target`` is the goal when a search
    has neither ``target_zeros`` nor a time or hash limit.
    """

    command: Sequence[str] | str
    max_threads: int | None = None
    batch_size: int = 10_000_000
    extra_args: Sequence[str] = ()
    start_difficulty: int = 1
    default_target: int = 8
    kill_grace_seconds: float = 1.0
    env: dict[str, str] | None = None
    runs: list[list[str]] = field(default_factory=list, repr=False)  # argv of each run

    def argv(
        self, index: int, entropy: bytes, farmer: str, start_nonce: int, difficulty: int, threads: int
    ) -> list[str]:
        """The command line for one run, in kale-miner's convention."""
        cmd = shlex.split(self.command) if isinstance(self.command, str) else list(self.command)
        return [
            *cmd,
            str(index),
            base64.b64encode(entropy).decode("ascii"),
            str(start_nonce),
            str(difficulty),
            farmer,
            "--max-threads",
            str(threads),
            "--batch-size",
            str(self.batch_size),
            *self.extra_args,
        ]

    def _run(self, argv: list[str], deadline: float | None, cancel: threading.Event | None) -> str | None:
        """Run one search; its stdout, or None when stopped by the deadline or ``cancel``."""
        self.runs.append(argv)
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,  # so that stopping it stops its children too
            )
        except OSError as exc:
            raise ExternalMinerError(f"cannot start external miner {argv[0]!r}: {exc}") from None
        try:
            while True:
                wait = 0.05
                if deadline is not None:
                    wait = min(wait, max(deadline - time.monotonic(), 0.0))
                try:
                    out, err = proc.communicate(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if (deadline is not None and time.monotonic() >= deadline) or (
                    cancel is not None and cancel.is_set()
                ):
                    self._stop(proc)
                    return None
        except BaseException:
            self._stop(proc)
            raise
        if proc.returncode != 0:
            raise ExternalMinerError(
                f"external miner exited with status {proc.returncode}: {(err or out).strip()[-300:]!r}"
            )
        return out

    def _stop(self, proc: subprocess.Popen[str]) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.communicate(timeout=self.kill_grace_seconds)
                return
            except subprocess.TimeoutExpired:
                continue

    def __call__(
        self,
        index: int,
        entropy: bytes,
        farmer: str,
        *,
        start_nonce: int = 0,
        max_hashes: int | None = None,
        seconds: float | None = None,
        target_zeros: int | None = None,
        threads: int | None = None,
        on_improvement: Callable[[Solution], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Solution:
        """Search like :func:`kalepool.miner.search` with the external program.

        Raises :class:`ExternalMinerError` if the program fails, answers wrongly, or
        gives no answer at all before the time limit.
        """
        kale_pow.check_index(index)
        entropy = kale_pow.check_entropy(entropy)
        kale_pow.farmer_key_bytes(farmer)
        if not 0 <= start_nonce <= MAX_START_NONCE:
            raise ValueError(f"start_nonce: an external miner takes [0, 2^63), got {start_nonce}")
        if max_hashes is not None and max_hashes < 1:
            raise ValueError(f"max_hashes: must be a positive integer, got {max_hashes!r}")
        if target_zeros is None and seconds is None and max_hashes is None:
            target_zeros = self.default_target
        goal = 64 if target_zeros is None else target_zeros
        n_threads = threads or self.max_threads or default_threads()
        deadline = None if seconds is None else time.monotonic() + seconds
        end = None if max_hashes is None else start_nonce + max_hashes  # exclusive

        best: Solution | None = None
        nonce_from = start_nonce
        covered = 0
        difficulty = max(0, min(self.start_difficulty, goal))
        while True:
            if cancel is not None and cancel.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if nonce_from > MAX_START_NONCE or (end is not None and nonce_from >= end):
                break
            argv = self.argv(index, entropy, farmer, nonce_from, difficulty, n_threads)
            out = self._run(argv, deadline, cancel)
            if out is None:
                break
            nonce, digest = parse_answer(out)
            self._verify(index, entropy, farmer, nonce, digest, difficulty, nonce_from)
            covered = max(covered, nonce - start_nonce + 1)
            zeros = kale_pow.leading_zeros(digest)
            found = Solution(nonce, digest, zeros, covered)
            if found.better_than(best):
                best = found
                if on_improvement is not None:
                    on_improvement(found)
            top = max(zeros, best.zeros if best is not None else 0)
            if top >= goal:
                break
            difficulty = top + 1
            nonce_from = nonce + 1
        if best is None:
            raise ExternalMinerError("the external miner gave no answer before the search stopped")
        return Solution(best.nonce, best.hash, best.zeros, covered)

    @staticmethod
    def _verify(
        index: int, entropy: bytes, farmer: str, nonce: int, digest: bytes, difficulty: int, nonce_from: int
    ) -> None:
        try:
            kale_pow.check_nonce(nonce)
        except ValueError as exc:
            raise ExternalMinerError(f"external miner answered an invalid nonce: {exc}") from None
        expected = kale_pow.work_hash(index, nonce, entropy, farmer)
        if digest != expected:
            raise ExternalMinerError(
                f"external miner's hash for nonce {nonce} is wrong: it said {digest.hex()}, "
                f"the preimage hashes to {expected.hex()}"
            )
        zeros = kale_pow.leading_zeros(expected)
        if zeros < difficulty:
            raise ExternalMinerError(
                f"external miner answered nonce {nonce} with {zeros} zeros, below the "
                f"difficulty {difficulty} it was asked for"
            )
        if nonce < nonce_from:
            raise ExternalMinerError(f"external miner answered nonce {nonce}, below its start {nonce_from}")
