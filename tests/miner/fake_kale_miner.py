"""A stand-in for kale-miner: same command line and output, pycryptodome inside.

    fake_kale_miner.py <block> <base64 entropy> <start nonce> <difficulty> <G address>
                       --max-threads N --batch-size B [--mode MODE]

MODE (or the FAKE_MINER_MODE environment variable) makes it misbehave on purpose:
``correct`` (default), ``banner`` (kale-miner's GPU banner line before the JSON),
``wrong_hash``, ``wrong_nonce``, ``low_zeros``, ``garbage``, ``fail`` (exit 3),
``hang`` (never answers), ``hang_after:N`` (answers N times, counted in the file
named by FAKE_MINER_COUNTER, then hangs).
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

from Crypto.Hash import keccak  # only pycryptodome: this must start fast


def work_hash(index: int, nonce: int, entropy: bytes, farmer: str) -> bytes:
    key = base64.b32decode(farmer)[1:33]  # strkey: version byte, 32-byte key, CRC16
    data = index.to_bytes(4, "big") + nonce.to_bytes(8, "big") + entropy + key
    return keccak.new(data=data, digest_bits=256).digest()


def leading_zeros(digest: bytes) -> int:
    return len(digest.hex()) - len(digest.hex().lstrip("0"))


def main(argv: list[str]) -> int:
    positional: list[str] = []
    opts: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg.startswith("--"):
            opts[arg] = next(args, "")
        else:
            positional.append(arg)
    block, entropy_b64, start, difficulty, farmer = positional[:5]
    mode = opts.get("--mode", os.environ.get("FAKE_MINER_MODE", "correct"))
    assert "--max-threads" in opts and "--batch-size" in opts, argv
    if mode == "fail":
        print("boom", file=sys.stderr)
        return 3
    if mode == "hang":
        time.sleep(3600)
    if mode.startswith("hang_after:"):
        counter = Path(os.environ["FAKE_MINER_COUNTER"])
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        if n >= int(mode.split(":")[1]):
            time.sleep(3600)
    index, entropy, nonce, want = int(block), base64.b64decode(entropy_b64), int(start), int(difficulty)
    while True:
        digest = work_hash(index, nonce, entropy, farmer)
        if leading_zeros(digest) >= want:
            break
        nonce += 1
    if mode == "wrong_hash":
        digest = digest[:-1] + bytes([digest[-1] ^ 1])
    elif mode == "wrong_nonce":
        nonce += 1
    elif mode == "low_zeros":
        nonce = int(start)
        while leading_zeros(work_hash(index, nonce, entropy, farmer)) >= want:
            nonce += 1
        digest = work_hash(index, nonce, entropy, farmer)
    elif mode == "garbage":
        print("No valid hash found.")
        return 0
    if mode == "banner":
        print("[GPU] CUDA")
    print('{\n  "hash": "' + digest.hex() + '",\n  "nonce": ' + str(nonce) + "\n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
