"""The ``kalepool`` command line: thin commands over library functions.

Each command collects its inputs, calls into the package, and prints the result.
Errors deriving from :class:`kalepool.errors.KalePoolError` (or ``ValueError``) are
printed as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from kalepool import __version__

app = typer.Typer(
    name="kalepool",
    help="Pooled KALE mining on Stellar: devnet, pool backend, pooler, miner and demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (also KALEPOOL_CONFIG)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kalepool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """kalepool: pooled KALE mining on Stellar."""


config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings as JSON, secrets redacted."""
    from kalepool.settings import load_settings

    print_json(load_settings(config).redacted())


@app.command()
def demo(
    farmers: Annotated[int, typer.Option(min=1, help="Number of farmers.")] = 8,
    blocks: Annotated[int, typer.Option(min=1, help="Number of blocks to run.")] = 3,
    poolers: Annotated[int, typer.Option(min=1, help="Number of poolers.")] = 1,
    block_interval: Annotated[int, typer.Option(min=1, help="Devnet block interval, s.")] = 30,
    ledger_seconds: Annotated[float, typer.Option(min=0.1, help="Devnet ledger time, s.")] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Run the whole pool on the embedded defaults: devnet, PostgreSQL, backend, pooler."""
    fail(
        "the demo is not built yet: it will start the devnet, an embedded PostgreSQL, "
        f"the backend and {poolers} pooler(s), then plant, mine, work and harvest "
        f"{blocks} block(s) for {farmers} farmers (see the open issues)"
    )


# --- devnet commands (owned by the devnet part) -------------------------------------------


@app.command("devnet")
def devnet_command(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [settings: 127.0.0.1].")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port; 0 picks a free one [settings: 8000].")
    ] = None,
    ledger_seconds: Annotated[
        float | None, typer.Option(min=0.05, help="Seconds between ledger closes [settings: 5].")
    ] = None,
    block_interval: Annotated[
        int | None, typer.Option(min=1, help="KALE block interval in seconds [settings: 300].")
    ] = None,
    temp_ttl: Annotated[
        int | None, typer.Option(min=1, help="Ledgers a temporary entry lives [settings: 17280].")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", help="State file: loaded at start if present, saved at each ledger close."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the local devnet (Soroban JSON-RPC, friendbot, the KALE farm) until Ctrl-C.

    Prints the RPC URL, then one JSON line with what GET /devnet returns.
    """
    import signal
    import threading

    from kalepool.devnet import DevnetConfig, DevnetServer
    from kalepool.settings import load_settings

    settings = load_settings(config).devnet
    devnet_config = DevnetConfig(
        ledger_seconds=ledger_seconds if ledger_seconds is not None else settings.ledger_seconds,
        block_interval=block_interval if block_interval is not None else settings.block_interval,
        temp_ttl=temp_ttl if temp_ttl is not None else settings.temp_ttl,
    )
    server = DevnetServer(
        devnet_config,
        host=host if host is not None else settings.host,
        port=port if port is not None else settings.port,
        auto_close=True,
        state_file=state if state is not None else settings.state_file,
    )
    try:
        server.start()
    except OSError as exc:
        fail(f"cannot listen on {server.host}:{server.port}: {exc}")
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"kalepool devnet listening on {server.rpc_url}")
    typer.echo(json.dumps(server.info(), sort_keys=True), nl=True)
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    typer.echo("kalepool devnet stopped")



# --- miner commands (owned by the miner part) ----------------------------------------------

mine_app = typer.Typer(
    help="Mine KALE: a one-off search (kalepool mine --index I --entropy B64 --farmer G...) "
    "or the kernel benchmark (kalepool mine bench).",
    invoke_without_command=True,
)
app.add_typer(mine_app, name="mine")


def _entropy_option(value: str) -> bytes:
    """Block entropy given as base64 (kale-miner's convention) or as 64 hex digits."""
    import base64
    import binascii

    text = value.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"entropy: {value!r} is neither base64 nor 64 hex digits") from None
    if len(raw) != 32:
        raise ValueError(f"entropy: must decode to 32 bytes, got {len(raw)}")
    return raw


@mine_app.callback()
def mine(
    ctx: typer.Context,
    index: Annotated[int | None, typer.Option(min=0, max=2**32 - 1, help="Block index (FarmIndex).")] = None,
    entropy: Annotated[
        str | None, typer.Option(help="The block's entropy: base64 (as kale-miner) or 64 hex digits.")
    ] = None,
    farmer: Annotated[str | None, typer.Option(help="The farmer's address (G... or C...).")] = None,
    seconds: Annotated[
        float | None, typer.Option(min=0, help="Time limit (default 10 s if no other limit is given).")
    ] = None,
    target_zeros: Annotated[
        int | None, typer.Option(min=0, max=64, help="Stop once this many zeros.")
    ] = None,
    start_nonce: Annotated[int, typer.Option(min=0, max=2**64 - 1, help="First nonce.")] = 0,
    max_hashes: Annotated[int | None, typer.Option(min=1, help="Stop after this many hashes.")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads (default: miner.threads, else all cores).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Search one farmer's nonces for the most leading zeros and print the best as JSON."""
    if ctx.invoked_subcommand is not None:
        return
    import base64
    import time

    from kalepool.miner import Solution, load_kernel, search
    from kalepool.settings import load_settings

    if index is None or entropy is None or farmer is None:
        fail("--index, --entropy and --farmer are required (or run `kalepool mine bench`)", code=2)
    entropy_bytes = _entropy_option(entropy)
    settings = load_settings(config).miner
    info = load_kernel(settings.cpu_target)
    if seconds is None and target_zeros is None and max_hashes is None:
        seconds = 10.0
    latest: list[Solution] = []
    t0 = time.monotonic()
    interrupted = False
    try:
        sol = search(
            index,
            entropy_bytes,
            farmer,
            start_nonce=start_nonce,
            max_hashes=max_hashes,
            seconds=seconds,
            target_zeros=target_zeros,
            threads=threads or settings.threads,
            on_improvement=latest.append,
        )
    except KeyboardInterrupt:
        if not latest:
            raise
        sol, interrupted = latest[-1], True
    elapsed = time.monotonic() - t0
    print_json(
        {
            **sol.as_dict(),
            "index": index,
            "entropy": base64.b64encode(entropy_bytes).decode("ascii"),
            "farmer": farmer,
            "seconds": round(elapsed, 3),
            "mhs": round(sol.hashes_done / elapsed / 1e6, 3) if elapsed > 0 else None,
            "cpu_target": info.cpu_target,
            "interrupted": interrupted,
        }
    )


@mine_app.command("bench")
def mine_bench(
    seconds: Annotated[
        float, typer.Option(min=0.1, help="Kernel seconds per measurement (1 and N threads).")
    ] = 3.0,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Threads for the total (default: all cores).")
    ] = None,
    cold: Annotated[
        bool, typer.Option("--cold", help="Also time a cold JIT in a fresh cache (slow).")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Hash rate of the kernel per core and in total, against a plain pycryptodome loop."""
    from kalepool.miner import load_kernel
    from kalepool.miner.bench import format_bench, run_bench
    from kalepool.settings import load_settings

    settings = load_settings(config).miner
    load_kernel(settings.cpu_target)
    result = run_bench(seconds, threads or settings.threads, cold=cold)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        typer.echo(format_bench(result))


# --- backend commands (owned by the backend part) ------------------------------------------

backend_app = typer.Typer(
    help="The pool backend: database migrations, custody keys, the HTTP server, the workers.",
    no_args_is_help=True,
)
app.add_typer(backend_app, name="backend")

RevisionOption = Annotated[str, typer.Option("--revision", "-r", help="Alembic revision.")]


@backend_app.command("migrate")
def backend_migrate(config: ConfigOption = None, revision: RevisionOption = "head") -> None:
    """Migrate the database (database.url, or the embedded one) up to REVISION."""
    from kalepool.backend.db import migrate
    from kalepool.backend.runtime import database_target
    from kalepool.settings import load_settings

    with database_target(load_settings(config)) as target:
        migrate.upgrade(target.url, revision)
        typer.echo(f"database at revision {migrate.current_revision(target.url)}")


@backend_app.command("downgrade")
def backend_downgrade(
    config: ConfigOption = None,
    revision: RevisionOption = "base",
    yes: Annotated[bool, typer.Option("--yes", help="Really drop (base drops every table).")] = False,
) -> None:
    """Migrate the database down to REVISION (default: base, which drops everything)."""
    from kalepool.backend.db import migrate
    from kalepool.backend.runtime import database_target
    from kalepool.settings import load_settings

    if not yes:
        fail(f"downgrading to {revision} can drop data: add --yes to proceed", code=2)
    with database_target(load_settings(config)) as target:
        migrate.downgrade(target.url, revision)
        typer.echo(f"database at revision {migrate.current_revision(target.url)}")


@backend_app.command("serve")
def backend_serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (backend.host).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (backend.port).")] = None,
    run_migrations: Annotated[
        bool, typer.Option("--migrate", help="Migrate first (always done on the embedded database).")
    ] = False,
) -> None:
    """Serve the REST API (uvicorn) until interrupted."""
    from kalepool.backend.runtime import serve
    from kalepool.settings import load_settings

    serve(load_settings(config), host=host, port=port, run_migrations=run_migrations)


@backend_app.command("generate-master-key")
def backend_generate_master_key() -> None:
    """Print a new master key (base64): put it first in KALEPOOL_BACKEND__MASTER_KEY."""
    from kalepool.backend.custody import generate_master_key

    typer.echo(generate_master_key())


@backend_app.command("rotate-master-key")
def backend_rotate_master_key(config: ConfigOption = None) -> None:
    """Re-seal every custodial secret under the first (active) master key.

    Configure the new key first and the old one(s) after it, run this, then drop the old keys.
    """
    from kalepool.backend.runtime import rotate_master_key
    from kalepool.settings import load_settings

    count = rotate_master_key(load_settings(config))
    typer.echo(f"re-sealed {count} secret(s)")


@backend_app.command("workers")
def backend_workers(
    config: ConfigOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One run of each worker, print what it did, exit.")
    ] = False,
) -> None:
    """Run the auto-harvester and the reconciler without the HTTP server.

    Safe beside `serve` and other worker processes (pails are claimed with SKIP LOCKED);
    set backend.workers = false on the servers to keep the workers here only.
    """
    from kalepool.backend.runtime import run_workers
    from kalepool.settings import load_settings

    result = run_workers(load_settings(config), once=once)
    if result is not None:
        print_json(result)



# --- pooler commands (owned by the pooler part) --------------------------------------------


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except (ValueError, FileNotFoundError) as exc:  # KalePoolError input errors are ValueErrors
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
