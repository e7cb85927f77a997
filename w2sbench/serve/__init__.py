"""The scoring service for automated researchers (`w2sbench serve`): agents submit methods and get answers
that do not give the test set away. campaign (the YAML), ladder (the release rule), state (queue, budgets and
log on disk), probe (an agent's code described from inside the sandbox), engine (the tools and the queue),
http_api and mcp_tools (the two faces), finals, report."""
