"""The commands people run against a pool: ``keys``, ``admin`` (the operator) and ``farmer``.

Thin commands over :class:`kalepool.pool_api.PoolApi` (the client the demo uses too) and
:mod:`kalepool.stellar.keys`. Secrets and tokens go to files created with mode 0600 and
are never printed, except an API key or token the backend shows only once, when no file
is given for it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from kalepool.cli.common import ConfigOption, JsonOption, print_json, setting_help
from kalepool.errors import ConfigError
from kalepool.kale.amounts import amount_text

T = TypeVar("T")

keys_app = typer.Typer(help="Stellar keypairs kept in files.", no_args_is_help=True)
admin_app = typer.Typer(
    help="The operator's side of the API, with the admin token (backend.admin_token, "
    "KALEPOOL_BACKEND__ADMIN_TOKEN).",
    no_args_is_help=True,
)
poolers_app = typer.Typer(help="Register and list the pool's poolers.", no_args_is_help=True)
admin_app.add_typer(poolers_app, name="poolers")
farmer_app = typer.Typer(
    help="A farmer's side of the API: register, fund, check, change, leave.", no_args_is_help=True
)




def write_private(path: Path, text: str) -> None:
    """``text`` into a new file only its owner can read (never over an existing file)."""
    try:
        fd = os.open(Path(path).expanduser(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: it is never overwritten") from None
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _run(call: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(call())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- keys


@keys_app.command("new")
def keys_new(
    path: Annotated[Path, typer.Argument(help="File to create for the secret (mode 0600).")],
    friendbot: Annotated[
        bool,
        typer.Option("--friendbot", help="Create the account with the network's friendbot (test networks)."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a keypair: the S... secret goes into PATH, the public key is printed.

    With --friendbot the account is also created and funded on the network of the
    settings (the devnet's or testnet's friendbot).
    """
    from kalepool.settings import load_settings
    from kalepool.stellar.keys import fund_from_friendbot, new_secret_file

    settings = load_settings(config)
    keypair = new_secret_file(path)
    if friendbot:
        _run(lambda: fund_from_friendbot(settings.stellar.profile(), keypair.public_key))
    typer.echo(keypair.public_key)


# -------------------------------------------------------------------------- admin


def _admin_api(config: Path | None, backend_url: str | None) -> Any:
    from kalepool.pool_api import PoolApi
    from kalepool.settings import load_settings

    backend = load_settings(config).backend
    if backend.admin_token is None:
        raise ConfigError(
            "the admin token is missing: set backend.admin_token (KALEPOOL_BACKEND__ADMIN_TOKEN)"
        )
    url = backend_url or f"http://{backend.host}:{backend.port}"
    return PoolApi(url, backend.admin_token.get_secret_value(), retries=2)


def _as_admin(config: Path | None, backend_url: str | None, call: Callable[[Any], Awaitable[Any]]) -> Any:
    """``call(api)`` as the operator; its answer."""
    api = _admin_api(config, backend_url)

    async def run() -> Any:
        async with api:
            return await call(api)

    return asyncio.run(run())


AdminUrlOption = Annotated[
    str | None,
    typer.Option(metavar="URL", help="The backend's base URL (default: http://backend.host:backend.port)."),
]


@poolers_app.command("add")
def poolers_add(
    name: Annotated[str, typer.Option(help="The pooler's name (letters, digits, space . _ -).")],
    public_key: Annotated[
        str | None, typer.Option(metavar="G...", help="The pooler's own account: its share is paid there.")
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Or the pooler's secret file, to read the account from."),
    ] = None,
    reward_share_bps: Annotated[
        int, typer.Option(metavar="BPS", help="The pooler's share of its farmers' rewards, basis points.")
    ] = 1000,
    max_farmers: Annotated[int | None, typer.Option(metavar="N", help="Farmers it takes at most.")] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Write the pooler's API key here (mode 0600) instead of printing it."
        ),
    ] = None,
    backend_url: AdminUrlOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Register a pooler; its API key is shown once (printed, or written to --api-key-file)."""
    from kalepool.pooler.runner import load_keypair

    if (public_key is None) == (secret_file is None):
        raise ConfigError("give the pooler's account: --public-key G... or --secret-file FILE")
    account = public_key or load_keypair(None, secret_file).public_key
    data = _as_admin(
        config,
        backend_url,
        lambda api: api.create_pooler(name, account, reward_share_bps, max_farmers=max_farmers),
    )
    key = str(data["api_key"])
    if api_key_file is not None:
        write_private(api_key_file, key + "\n")
        data = {**data, "api_key": f"written to {api_key_file}"}
    if as_json:
        print_json(data)
        return
    pooler = data["pooler"]
    typer.echo(f"pooler {pooler['pooler_id']} ({pooler['name']}, {account}, share {reward_share_bps} bps)")
    typer.echo(f"API key: {data['api_key']}" + ("" if api_key_file else " (shown once: keep it)"))


@poolers_app.command("list")
def poolers_list(
    backend_url: AdminUrlOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Every pooler: id, name, status, share, farmers, last heartbeat."""
    poolers = _as_admin(config, backend_url, lambda api: api.poolers())
    if as_json:
        print_json(poolers)
        return
    typer.echo(f"{'pooler id':36}  {'name':16} {'status':9} {'share bps':>9} {'farmers':>7}  last heartbeat")
    for p in poolers:
        typer.echo(
            f"{p['pooler_id']:36}  {p['name'][:16]:16} {p['status']:9} {p['reward_share_bps']:>9} "
            f"{p['farmers']:>7}  {p['last_heartbeat_at'] or '-'}"
        )


@poolers_app.command("id")
def poolers_id(
    name: Annotated[str, typer.Argument(help="The pooler's name.")],
    backend_url: AdminUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the id of the pooler called NAME (for scripts: POOLER_ID=$(...))."""
    found = [p for p in _as_admin(config, backend_url, lambda api: api.poolers()) if p["name"] == name]
    if not found:
        raise ConfigError(f"no pooler is called {name!r}")
    typer.echo(found[0]["pooler_id"])


# ------------------------------------------------------------------------- farmer


CredentialsOption = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        metavar="FILE",
        help=setting_help("The file `farmer register --save` wrote", "farmer.credentials_file"),
    ),
]


def _farmer(config: Path | None, credentials: Path | None) -> tuple[Any, str, str]:
    """``(api, farmer_id, token)`` from the settings or the credentials file."""
    from kalepool.pool_api import PoolApi
    from kalepool.settings import load_settings

    fs = load_settings(config).farmer
    farmer_id, token, url = fs.farmer_id, fs.token.get_secret_value() if fs.token else None, fs.backend_url
    path = credentials or fs.credentials_file
    if path is not None and (farmer_id is None or token is None):
        try:
            saved = json.loads(Path(path).expanduser().read_text())
        except FileNotFoundError:
            raise ConfigError(f"farmer credentials file not found: {path}") from None
        except ValueError:
            raise ConfigError(f"{path} is not a farmer credentials file (JSON)") from None
        farmer_id = farmer_id or saved.get("farmer_id")
        token = token or saved.get("token")
        url = saved.get("backend_url") or url
    if farmer_id is None or token is None:
        raise ConfigError(
            "no farmer credentials: give --credentials FILE (written by `farmer register --save`), "
            "or set farmer.farmer_id and farmer.token (KALEPOOL_FARMER__TOKEN)"
        )
    return PoolApi(url, retries=2), farmer_id, token


def _as_farmer(
    config: Path | None, credentials: Path | None, call: Callable[[Any, str, str], Awaitable[Any]]
) -> Any:
    """``call(api, farmer_id, token)`` with the farmer's credentials; its answer."""
    api, farmer_id, token = _farmer(config, credentials)

    async def run() -> Any:
        async with api:
            return await call(api, farmer_id, token)

    return asyncio.run(run())


def _stroops(amount: int | None, asset: str | None = "KALE") -> str:
    return "-" if amount is None else amount_text(amount, unit=asset or "", min_places=0)


def format_funding(funding: dict[str, Any]) -> list[str]:
    """The funding steps, each marked done or not, and what is missing."""
    lines = []
    for step in funding["steps"]:
        amount = f" ({_stroops(step['amount'], step['asset'])} at least)" if step["amount"] else ""
        lines.append(f"  [{'x' if step['done'] else ' '}] {step['number']}. {step['action']}{amount}")
    missing = funding.get("missing")
    if missing is not None:
        lines.append("  missing: " + (", ".join(missing) if missing else "nothing: ready to be planted"))
    return lines


@farmer_app.command("register")
def farmer_register(
    pooler_id: Annotated[str, typer.Option(metavar="ID", help="The pooler to farm with.")],
    payout_wallet: Annotated[
        str,
        typer.Option(
            metavar="G...", help="Your own account: rewards are paid there (it needs a KALE trustline)."
        ),
    ],
    stake: Annotated[
        float, typer.Option(metavar="PERCENT", help="The share of your KALE to stake in each block.")
    ],
    save: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Write the farmer id and token here (mode 0600) for the other commands."
        ),
    ] = None,
    backend_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help=setting_help("The backend's base URL", "farmer.backend_url")),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Open a custodial account with a pooler, and say how to fund it, step by step.

    The token is shown only once: with --save it goes into the file, otherwise it is printed.
    """
    from kalepool.pool_api import PoolApi
    from kalepool.settings import load_settings

    url = backend_url or load_settings(config).farmer.backend_url

    async def call() -> dict[str, Any]:
        async with PoolApi(url, retries=2) as api:
            data: dict[str, Any] = await api.register_farmer(pooler_id, payout_wallet, stake)
            return data

    data = _run(call)
    if save is not None:
        credentials = {"backend_url": url, "farmer_id": data["farmer_id"], "token": data["farmer_token"]}
        write_private(save, json.dumps(credentials, indent=2) + "\n")
        data = {**data, "farmer_token": f"written to {save}"}
    if as_json:
        print_json(data)
        return
    typer.echo(f"farmer {data['farmer_id']}: custodial wallet {data['custodial_wallet']}")
    typer.echo(f"token: {data['farmer_token']}" + ("" if save else " (shown once: keep it)"))
    typer.echo("funding:")
    for line in format_funding(data["funding"]):
        typer.echo(line)


@farmer_app.command("status")
def farmer_status(
    credentials: CredentialsOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Your farmer: funding (what is missing), balances from the journal, recent blocks."""
    data = _as_farmer(config, credentials, lambda api, f, t: api.farmer(f, t))
    if as_json:
        print_json(data)
        return
    funding = data["funding"]
    typer.echo(
        f"farmer {data['farmer_id']}: {data['status']}, funding {data['funding_state']}, "
        f"stake {data['stake_percentage']:g} %, pooler {data['pooler_id']}"
    )
    on_chain = (
        f"{_stroops(funding['xlm_balance'], 'XLM')}, {_stroops(funding['kale_balance'])}"
        if funding["chain_known"]
        else "unknown (the chain cannot be read)"
    )
    typer.echo(f"custodial wallet {data['custodial_wallet']}: {on_chain}")
    for line in format_funding(funding):
        typer.echo(line)
    typer.echo(f"journal: {_stroops(data['balances']['kale'])}, {_stroops(data['balances']['xlm'], 'XLM')}")
    for h in data["recent_harvests"][:5]:
        typer.echo(f"  block {h['block_index']}: {h['status']}, reward {_stroops(h.get('reward'))}")


@farmer_app.command("wallet")
def farmer_wallet(credentials: CredentialsOption = None, config: ConfigOption = None) -> None:
    """Print your custodial wallet's address: send your XLM and KALE there."""
    typer.echo(_as_farmer(config, credentials, lambda api, f, t: api.farmer(f, t))["custodial_wallet"])


@farmer_app.command("confirm")
def farmer_confirm(
    credentials: CredentialsOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Confirm the funding: the pool adds the KALE trustline once the XLM is there, and
    records the KALE that arrived since the last confirmation."""
    data = _as_farmer(config, credentials, lambda api, f, t: api.confirm_funding(f, t))
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"funding {data['farmer']['funding_state']}"
        + (f"; KALE trustline added ({data['trustline_tx_hash']})" if data["trustline_created"] else "")
        + f"; deposits recorded now: {_stroops(data['deposits_journaled'])}"
    )
    for line in format_funding(data["funding"]):
        typer.echo(line)


@farmer_app.command("update")
def farmer_update(
    stake: Annotated[float | None, typer.Option(metavar="PERCENT", help="A new stake percentage.")] = None,
    payout_wallet: Annotated[str | None, typer.Option(metavar="G...", help="A new payout wallet.")] = None,
    pooler_id: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Move to another pooler (once no block of yours is open)."),
    ] = None,
    credentials: CredentialsOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Change the stake percentage, the payout wallet or the pooler."""
    if stake is None and payout_wallet is None and pooler_id is None:
        raise ConfigError("nothing to change: give --stake, --payout-wallet or --pooler-id")
    data = _as_farmer(
        config,
        credentials,
        lambda api, f, t: api.update_farmer(
            f, t, stake_percentage=stake, payout_wallet=payout_wallet, pooler_id=pooler_id
        ),
    )
    if as_json:
        print_json(data)
        return
    typer.echo(
        f"farmer {data['farmer_id']}: stake {data['stake_percentage']:g} %, payout wallet "
        f"{data['payout_wallet']}, pooler {data['pooler_id']}"
    )


@farmer_app.command("leave")
def farmer_leave(
    credentials: CredentialsOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """Leave the pool: no new plantings; once your blocks are harvested, everything you
    own is paid to your payout wallet."""
    data = _as_farmer(config, credentials, lambda api, f, t: api.leave(f, t))
    if as_json:
        print_json(data)
        return
    typer.echo(f"farmer {data['farmer_id']}: {data['status']} (paid out once its blocks are harvested)")


# ------------------------------------------------------------------------- doctor


def doctor(config: ConfigOption = None) -> None:
    """Check this machine's configuration, one line each: settings, database (reachable,
    migrated), master key, network (the RPC serves the network of the settings), the
    pool's custodial accounts and the pooler's account (XLM for fees). Exit code 1 when
    a check fails."""
    from kalepool.doctor import Check, run_checks
    from kalepool.settings import load_settings

    settings = load_settings(config)
    stellar = settings.stellar
    typer.echo(
        Check(
            "settings",
            "ok",
            f"network {stellar.network}, backend {settings.backend.host}:{settings.backend.port}",
        ).line()
    )
    results = run_checks(settings, lambda check: typer.echo(check.line()))
    if any(r.verdict == "FAIL" for r in results):
        raise typer.Exit(1)
