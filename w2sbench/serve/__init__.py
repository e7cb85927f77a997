"""The scoring service for automated researchers (`w2sbench serve`): agents submit methods and get answers
that do not give the test set away. campaign (the YAML), ladder (the release rule), state (queue, budgets and
log on disk), engine (the tools and the queue; an agent's code is described by isolation.probe, in the sandbox),
http_api and mcp_tools (the two faces), finals, report."""
