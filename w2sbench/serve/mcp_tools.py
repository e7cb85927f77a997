"""The service's MCP face (the official `mcp` SDK): the same tools as the HTTP API, for agent frameworks.

    w2sbench serve mcp --url http://127.0.0.1:8765           # stdio, beside the agent; token in $W2SBENCH_TOKEN
    w2sbench serve mcp --url ... --transport streamable-http --port 8766

The MCP process holds no state and no data: it forwards each call to the service (HttpClient), so it can run
inside the agent's own sandbox. `build_server(client)` makes the server from any client with
`call(tool, arguments)`; tests give it a LocalClient and talk to it in memory.
"""

from __future__ import annotations

from typing import Any

from ..errors import MissingPackageError

INSTRUCTIONS = (
    "A weak-to-strong scoring service. Call describe first. submit_method sends a method's code and returns a "
    "job id; poll job until done; the released score is a pooled PGR on validation examples, released only "
    "when it beats your best by the campaign's step. devkit gives data you may use locally at no cost: debug "
    "there, since a failed job says only one line from a fixed list (describe's `failures`), never your "
    "method's own error text or output. Each submission that runs your code spends one evaluation of your "
    "budget and reserves compute seconds; nominate_final picks what is scored at the end."
)


def build_server(client: Any):
    try:
        from mcp.server import MCPServer
    except ImportError:
        raise MissingPackageError("mcp", "the MCP face of w2sbench serve", "pip install 'w2sbench[serve]'") from None

    from mcp.server.mcpserver.exceptions import ToolError as McpToolError

    from .engine import ToolError

    class _Refusing:
        """The service's one-line refusal becomes the tool's error text (not the SDK's generic one)."""

        def call(self, tool: str, arguments: dict | None = None) -> dict[str, Any]:
            try:
                return service.call(tool, arguments)
            except ToolError as e:
                raise McpToolError(str(e)) from None

    service, client = client, _Refusing()
    server = MCPServer("w2sbench-serve", instructions=INSTRUCTIONS)

    @server.tool(structured_output=True)
    def describe() -> dict[str, Any]:
        """The campaign: setting, development tasks with their sizes, the release rule, the method API and
        your budget."""
        return client.call("describe")

    @server.tool(structured_output=True)
    def submit_method(
        files: dict[str, str], hyperparameters: dict[str, Any] | None = None, class_name: str = ""
    ) -> dict[str, Any]:
        """Submit a method: `files` maps file names to their text and must hold `__init__.py`, which defines
        one Method or LossMethod subclass (name it in class_name when there are several). Spends one
        evaluation before your code runs, and reserves the job's time limit from your compute seconds;
        returns the job id and that limit."""
        return client.call(
            "submit_method", {"files": files, "hyperparameters": hyperparameters or {}, "class_name": class_name}
        )

    @server.tool(structured_output=True)
    def job(job: str) -> dict[str, Any]:
        """A job's status: queued (with your own jobs ahead of it), running, done (the released score and
        whether it is your new best) or failed (one line from describe's `failures`)."""
        return client.call("job", {"job": job})

    @server.tool(structured_output=True)
    def budget() -> dict[str, Any]:
        """Evaluations, compute seconds (left, and reserved by your queued and running jobs) and final
        nominations you have left (and releases, under the noisy rule)."""
        return client.call("budget")

    @server.tool(structured_output=True)
    def history() -> dict[str, Any]:
        """Your jobs in order, with their released answers, and your best released score."""
        return client.call("history")

    @server.tool(structured_output=True)
    def nominate_final(job: str) -> dict[str, Any]:
        """Nominate a finished job for the finals (scored once, on examples no answer came from)."""
        return client.call("nominate_final", {"job": job})

    @server.tool(structured_output=True)
    def devkit(task: str, part: str = "train_label", offset: int = 0, limit: int = 500) -> dict[str, Any]:
        """Data you may hold locally, a page at a time: part 'train_label' (texts with labels),
        'train_unlabel' or 'validation' (texts with the weak model's p(label=1), no labels)."""
        return client.call("devkit", {"task": task, "part": part, "offset": offset, "limit": limit})

    return server
