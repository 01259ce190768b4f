"""The ``kalepool`` command line: thin commands over library functions.

This module holds the root command and the services' commands (demo, devnet, mine,
backend, pooler); :mod:`~kalepool.cli.people` the commands people run against a pool
(keys, admin, farmer, doctor); :mod:`~kalepool.cli.common` what they share.

Each command collects its inputs, calls into the package, and prints the result. Errors
are handled once, by the root command group (:class:`~kalepool.cli.common.Commands`):
every kalepool error (the tree under :class:`kalepool.errors.KalePoolError`),
``ValueError`` and ``OSError`` is printed as one
``error: ...`` line on stderr, exit code 2 for configuration and input errors and 1 for
the others (:func:`kalepool.errors.is_usage_error`); Ctrl-C is ``error: interrupted``,
exit code 130.

Help texts are Markdown (reflowed to the terminal's width); an option whose default comes
from the settings names the setting and its default (:func:`~kalepool.cli.common.setting_help`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kalepool import __version__
from kalepool.cli.common import (
    Commands,
    ConfigOption,
    JsonOption,
    fail,
    print_json,
    setting_help,
    setting_option,
)

app = typer.Typer(
    name="kalepool",
    cls=Commands,
    help="Pooled KALE mining on Stellar: devnet, pool backend, pooler, miner and demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

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
    farmers: Annotated[int | None, typer.Option(min=1, help="Number of farmers (default 8).")] = None,
    blocks: Annotated[int | None, typer.Option(min=1, help="Number of blocks to run (default 3).")] = None,
    poolers: Annotated[int | None, typer.Option(min=1, help="Number of poolers (default 1).")] = None,
    block_interval: Annotated[
        int | None, typer.Option(min=10, help="Devnet block interval, s (default 30).")
    ] = None,
    ledger_seconds: Annotated[
        float | None, typer.Option(min=0.1, help="Devnet ledger time, s (default 1).")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Mining threads per pooler.")] = None,
    timeout: Annotated[float | None, typer.Option(min=10, help="Give up after this many seconds.")] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="After the report, keep the pool running and print the dashboard's address and "
            "the sign-in tokens, until interrupted (Ctrl-C).",
        ),
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Run the whole pool on the embedded defaults: devnet, PostgreSQL, backend, pooler.

    Registers and funds the farmers (a mix of stakes), runs the blocks (each planted,
    mined, worked and harvested through the real HTTP API and RPC protocol), then prints
    a report per block and per farmer and the reconciliation of journal and chain.
    Exit code 0 only when every block completed and everything reconciles. Defaults come
    from the demo settings section; KALEPOOL_DATABASE__URL names a PostgreSQL server to use.
    """
    import asyncio
    import sys
    import time

    from rich.console import Console

    from kalepool.demo import DemoOptions, run_demo
    from kalepool.demo.report import print_report

    console = Console(stderr=as_json, highlight=False)
    t0 = time.monotonic()

    def progress(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - t0:6.1f}s[/] {text}")

    from kalepool.settings import load_settings

    settings = load_settings(config)
    ds = settings.demo
    options = DemoOptions(
        farmers=farmers if farmers is not None else ds.farmers,
        blocks=blocks if blocks is not None else ds.blocks,
        poolers=poolers if poolers is not None else ds.poolers,
        block_interval=block_interval if block_interval is not None else ds.block_interval,
        ledger_seconds=ledger_seconds if ledger_seconds is not None else ds.ledger_seconds,
        threads=threads or settings.pooler.threads or settings.miner.threads,
        timeout=timeout if timeout is not None else ds.timeout,
        work_dir=ds.work_dir,
        database_url=settings.database.url.get_secret_value() if settings.database.url else None,
        serve=serve,
    )
    from kalepool.lifecycle import sigterm_as_interrupt

    shown: list[Any] = []

    def show(report: Any) -> None:
        shown.append(report)
        if as_json:
            typer.echo(json.dumps(report.to_json(), sort_keys=True))
        else:
            out = Console(highlight=False)
            if not out.is_terminal:
                out = Console(highlight=False, width=132)
            print_report(out, report)

    def announce(lines: list[str]) -> None:
        for line in [*lines, "serving until interrupted (Ctrl-C)"]:
            typer.echo(line, err=as_json)
        (sys.stderr if as_json else sys.stdout).flush()

    try:
        with sigterm_as_interrupt():  # stopped like Ctrl-C: every child is stopped first
            report = asyncio.run(run_demo(options, progress, on_report=show, announce=announce))
    except KeyboardInterrupt:
        if not shown:  # interrupted before its report
            raise
        raise typer.Exit(0 if shown[0].ok else 1) from None  # a served pool, stopped
    show(report)
    raise typer.Exit(0 if report.ok else 1)


# --- devnet commands (owned by the devnet part) -------------------------------------------


@app.command("devnet")
def devnet_command(
    host: Annotated[
        str | None, typer.Option(help=setting_help("Interface to listen on", "devnet.host"))
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help=setting_help("Port; 0 picks a free one", "devnet.port")),
    ] = None,
    ledger_seconds: Annotated[
        float | None,
        typer.Option(min=0.05, help=setting_help("Seconds between ledger closes", "devnet.ledger_seconds")),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            help=setting_help(
                "Chain seconds per wall-clock second: ledger close times follow the clock times this",
                "devnet.time_scale",
            )
        ),
    ] = None,
    block_interval: Annotated[
        int | None,
        typer.Option(min=1, help=setting_help("KALE block interval in seconds", "devnet.block_interval")),
    ] = None,
    temp_ttl: Annotated[
        int | None,
        typer.Option(min=1, help=setting_help("Ledgers a temporary entry lives", "devnet.temp_ttl")),
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
        time_scale=time_scale if time_scale is not None else settings.time_scale,
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


@backend_app.command("database")
def backend_database(
    config: ConfigOption = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, metavar="PORT", help="Port to listen on (default: a free one)."),
    ] = None,
) -> None:
    """Run the embedded PostgreSQL on database.data_dir, migrated, until Ctrl-C or SIGTERM.

    For a backend run by hand: `serve` and `workers` in other terminals share it through
    the URL this prints (KALEPOOL_DATABASE__URL). Prints one line, `database ready: URL`.
    """
    from kalepool.backend.runtime import run_database
    from kalepool.settings import load_settings

    def announce(url: str) -> None:
        typer.echo(f"database ready: {url}")
        sys.stdout.flush()

    run_database(load_settings(config), port=port, announce=announce)


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
    """Run the workers without the HTTP server: the auto-harvester, the reconciler and the payouts.

    Safe beside `serve` and other worker processes (pails and payouts are claimed with
    locks); set backend.workers = false on the servers to keep the workers here only.
    """
    from kalepool.backend.runtime import run_workers
    from kalepool.settings import load_settings

    result = run_workers(load_settings(config), once=once)
    if result is not None:
        print_json(result)


@backend_app.command("payouts")
def backend_payouts(
    config: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be paid now, and why; sign and write nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """One payout run: farmers' rewards, then each pooler's compensations and fees, then the platform's fees.

    With --dry-run, one line per step the run would take now (pay, fail, skip, wait, settle,
    resume, depart): who, how much and why. Without it, the run is made and what it did is
    printed as JSON.
    """
    from kalepool.backend.runtime import payout_plan, run_payouts
    from kalepool.backend.services.payouts import format_plan
    from kalepool.settings import load_settings

    settings = load_settings(config)
    if not dry_run:
        print_json(run_payouts(settings))
    elif as_json:
        print_json(payout_plan(settings).as_json())
    else:
        typer.echo(format_plan(payout_plan(settings)))


# --- pooler commands (owned by the pooler part) --------------------------------------------

pooler_app = typer.Typer(
    help="The mining-machine service: watch the farm, have the backend plant, mine, work, harvest.",
    no_args_is_help=True,
)
app.add_typer(pooler_app, name="pooler")


def _configure_pooler_logging(level: str, as_json: bool) -> None:
    """structlog to stderr: JSON lines (scripts, the demo) or a readable console format."""
    import logging

    import structlog
    from structlog.tracebacks import ExceptionDictTransformer

    # tracebacks without local variables: a frame's locals hold the API key and the seed
    rendering: list[Any] = (
        [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(sort_keys=True),
        ]
        if as_json
        else [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *rendering,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),  # the stderr of the moment
        cache_logger_on_first_use=False,
    )


def _pooler_status_view(status: Any) -> Any:
    """The live terminal view of a :class:`kalepool.pooler.service.PoolerStatus`."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{max(value, 0):.0f} s"

    head = Table.grid(padding=(0, 2))
    head.add_row(
        Text(f"pooler {status.account[:6]}…{status.account[-4:]}", style="bold"),
        f"phase [bold]{status.phase}[/]",
        f"farm block {status.farm_index if status.farm_index is not None else '-'}"
        + (" (ripe)" if status.ripe else ""),
        f"working block {status.block_index if status.block_index is not None else '-'}",
    )
    head.add_row(
        f"hash rate {status.hash_rate / 1e6:.2f} MH/s on {status.threads} thread(s)",
        f"channels {status.channels}",
        f"submit in {secs(status.time_left)}",
        f"rollover in {secs(status.until_rollover)}",
        f"blocks worked {status.blocks_worked}",
    )
    head.add_row(
        f"rewards {status.rewards / 1e7:.4f} KALE",
        f"compensation {status.compensation / 1e7:.4f} KALE",
        "works " + (", ".join(f"{k} {v}" for k, v in sorted(status.submissions.items())) or "-"),
        f"RPC errors {status.rpc_errors}" if status.rpc_errors else "",
    )
    farmers = Table(title=None, expand=False)
    for column in ("farmer", "wallet", "stake KALE", "best zeros", "submitted", "gap", "Mhashes", "state"):
        farmers.add_column(column, justify="right" if column not in ("farmer", "wallet", "state") else "left")
    for f in status.farmers:
        farmers.add_row(
            f.farmer_id[:8],
            f"{f.wallet[:6]}…{f.wallet[-4:]}",
            f"{f.stake / 1e7:.2f}",
            str(f.best_zeros) if f.best_zeros >= 0 else "-",
            str(f.submitted_zeros) if f.submitted_zeros >= 0 else "-",
            str(f.gap) if f.gap is not None else "-",
            f"{f.hashes / 1e6:.1f}",
            f.status,
        )
    events = Text("\n".join(status.events[-6:]), style="dim")
    return Group(head, farmers, events)


BackendUrlOption = Annotated[
    str | None, setting_option("The backend's base URL", "pooler.backend_url", "URL")
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        metavar="KEY",
        help="The pooler's API key (setting pooler.api_key; better in the environment, "
        "KALEPOOL_POOLER__API_KEY, where ps cannot show it).",
    ),
]


@pooler_app.command("earnings")
def pooler_earnings(
    backend_url: BackendUrlOption = None,
    api_key: ApiKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the backend's JSON answer.")] = False,
    config: ConfigOption = None,
) -> None:
    """What the pool owes this pooler (its share of its farmers' rewards) and has paid it."""
    import asyncio

    from kalepool.errors import ConfigError
    from kalepool.pooler.client import BackendClient, format_earnings
    from kalepool.settings import load_settings
    from kalepool.wire.pooler import PoolerEarnings

    overrides = {k: v for k, v in {"backend_url": backend_url, "api_key": api_key}.items() if v is not None}
    ps = load_settings(config, pooler=overrides).pooler
    if ps.api_key is None:
        raise ConfigError("the pooler's API key is missing: set pooler.api_key (KALEPOOL_POOLER__API_KEY)")

    _configure_pooler_logging("ERROR", False)  # the retries' warnings: the final error says it all

    async def main() -> PoolerEarnings:
        assert ps.api_key is not None
        async with BackendClient(ps.backend_url, ps.api_key.get_secret_value(), retries=2) as client:
            return await client.earnings()

    earnings = asyncio.run(main())
    if as_json:
        print_json(earnings.model_dump(mode="json"))
    else:
        typer.echo(format_earnings(earnings))


@pooler_app.command("run")
def pooler_run(
    backend_url: BackendUrlOption = None,
    api_key: ApiKeyOption = None,
    secret_file: Annotated[
        Path | None, setting_option("File holding the pooler's own S... secret", "pooler.secret_file", "FILE")
    ] = None,
    state_file: Annotated[Path | None, setting_option("Resume state", "pooler.state_file", "FILE")] = None,
    poll_interval: Annotated[
        float | None, setting_option("Seconds between farm reads", "pooler.poll_interval", "SECONDS")
    ] = None,
    max_farmers: Annotated[
        int | None, setting_option("Plant and mine at most this many", "pooler.max_farmers", "N")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Mining threads (setting pooler.threads, else miner.threads, else all cores)."
        ),
    ] = None,
    channels: Annotated[
        int | None, setting_option("Accounts submitting works in parallel", "pooler.channels", "N")
    ] = None,
    blocks: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Stop after this many blocks, once reported and harvested."),
    ] = None,
    no_status: Annotated[
        bool, typer.Option("--no-status", help="Log lines instead of the live status on a terminal.")
    ] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines on stderr.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the pooler until Ctrl-C (or SIGTERM): the first stops gracefully, a second at once.

    Registered with a backend (URL + API key) and funded on chain: the pooler pays the fees
    of the work transactions it submits; it never holds a farmer secret.
    """
    import asyncio

    from kalepool.pooler.runner import build_service, load_keypair, run_until_stopped
    from kalepool.settings import load_settings

    overrides = {
        key: value
        for key, value in {
            "backend_url": backend_url,
            "api_key": api_key,
            "secret_file": secret_file,
            "state_file": state_file,
            "poll_interval": poll_interval,
            "max_farmers": max_farmers,
            "threads": threads,
            "channels": channels,
        }.items()
        if value is not None
    }
    settings = load_settings(config, pooler=overrides)
    ps = settings.pooler
    keypair = load_keypair(ps.secret.get_secret_value() if ps.secret else None, ps.secret_file)
    live_view = not no_status and sys.stdout.isatty()
    _configure_pooler_logging("WARNING" if live_view else settings.log_level, log_json or settings.log_json)

    async def show(service: Any) -> None:
        from rich.console import Console
        from rich.live import Live

        with Live(
            _pooler_status_view(service.status()), console=Console(), refresh_per_second=4, transient=False
        ) as live:
            while True:
                await asyncio.sleep(0.25)
                live.update(_pooler_status_view(service.status()))

    async def main() -> None:
        service = await build_service(settings, keypair=keypair, max_blocks=blocks)
        await run_until_stopped(
            service, cpu_target=settings.miner.cpu_target, alongside=show if live_view else None
        )

    try:
        asyncio.run(main())
    except asyncio.CancelledError:  # a second signal cancels at once
        raise KeyboardInterrupt from None


# --- people's commands: keys, the operator, farmers; the health check ------------------------

from kalepool.cli.people import admin_app, doctor, farmer_app, keys_app  # noqa: E402

app.command("doctor")(doctor)
app.add_typer(keys_app, name="keys")
app.add_typer(admin_app, name="admin")
app.add_typer(farmer_app, name="farmer")


def main() -> None:
    """Console-script entry point (errors are handled by :class:`Commands`)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
