"""`w2sbench serve ...`: the scoring service's commands.

w2sbench serve CAMPAIGN.yaml          run the service (HTTP JSON API; jobs in the sandbox)
w2sbench serve mcp --url URL          the MCP face beside an agent (stdio or streamable HTTP)
w2sbench serve finals CAMPAIGN.yaml   score the nominated methods once, on what answers never used
w2sbench serve report STATE/log.jsonl what each agent tried: released against true scores, finals
w2sbench serve token                  a new agent token and the SHA-256 that the campaign file holds
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from ..errors import W2SError

SUBCOMMANDS = ("mcp", "finals", "report", "token", "start")


class _ServeGroup(click.Group):
    """`w2sbench serve CAMPAIGN.yaml` runs the service; a known first word is a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in SUBCOMMANDS and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group("serve", cls=_ServeGroup)
def serve() -> None:
    """The scoring service for agents that iterate on methods (w2sbench serve CAMPAIGN.yaml)."""


@serve.command("start")
@click.argument("campaign", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--port", type=int, default=None, help="Port of the HTTP API (default: the campaign's, else 8765).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback listen host (put TLS in front of it).")
def start_cmd(campaign, port, allow_remote):
    """Run the service until stopped (Ctrl-C, SIGTERM): queued jobs and answers survive a restart."""
    from .campaign import LOOPBACK, load_campaign
    from .engine import Service
    from .http_api import make_server

    c = load_campaign(campaign)
    if c.host not in LOOPBACK and not allow_remote:
        raise W2SError(f"{campaign}: field 'listen.host': {c.host} is not loopback; pass --allow-remote to serve it")
    service = Service(c)
    server = make_server(service, c.host, c.port if port is None else port)
    host, bound = server.server_address[:2]
    click.echo(
        f"w2sbench serve: campaign {c.name!r}, {len(c.agents)} agent(s), http://{host}:{bound}/api "
        f"(state and log: {c.state})",
        err=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        service.stop()


@serve.command("mcp")
@click.option("--url", required=True, help="The running service, e.g. http://127.0.0.1:8765")
@click.option("--token-env", default="W2SBENCH_TOKEN", show_default=True, help="Environment variable with the token.")
@click.option("--transport", type=click.Choice(["stdio", "streamable-http"]), default="stdio", show_default=True)
@click.option("--port", type=int, default=8766, show_default=True, help="Port for streamable HTTP (at /mcp).")
def mcp_cmd(url, token_env, transport, port):
    """The MCP tools, forwarded to the service: holds no state and no data, so it can run beside the agent."""
    from .http_api import HttpClient
    from .mcp_tools import build_server

    token = os.environ.get(token_env)
    if not token:
        raise W2SError(f"set ${token_env} to the agent's token")
    server = build_server(HttpClient(url, token))
    if transport == "stdio":
        server.run()
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=port)


@serve.command("finals")
@click.argument("campaign", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def finals_cmd(campaign):
    """Run every nominated method once on the final examples and the held-out tasks; print and store."""
    from .campaign import load_campaign
    from .finals import run_finals

    c = load_campaign(campaign)
    records = run_finals(c, say=lambda line: click.echo(line, err=True))
    if not records:
        click.echo("no nominated method")
    for r in records:
        pooled = "undefined" if r["pooled_pgr"] is None else f"{r['pooled_pgr']:+.3f}"
        flags = sorted({f"{t}: {f}" for t, doc in r["tasks"].items() for f in doc.get("flags", [])})
        click.echo(
            f"{r['agent']:<16} {r['method']:<32} job {r['job']}  pooled PGR {pooled}"
            + (f"  flags: {'; '.join(flags)}" if flags else "")
        )
    click.echo(f"results and submissions: {c.state / 'finals'}", err=True)


@serve.command("report")
@click.argument("log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--plot-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the figure goes (default: beside the log).",
)
def report_cmd(log, plot_dir):
    """Per agent: jobs, released against true validation scores, finals; and the figure (PNG, SVG)."""
    from .report import draw, format_report, read_log, summarise

    agents = summarise(read_log(log))
    click.echo(format_report(agents))
    for path in draw(agents, plot_dir or log.parent):
        click.echo(f"figure: {path}", err=True)


@serve.command("token")
def token_cmd():
    """A new random token (give it to the agent) and its SHA-256 (put it in the campaign file)."""
    from .campaign import token_sha256

    token = secrets.token_urlsafe(24)
    click.echo(f"token:        {token}\ntoken_sha256: {token_sha256(token)}")
