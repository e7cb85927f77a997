"""The engine: a run as a graph of units (features, weak, ceiling, method, score) with input-hash keys,
the stages that compute them (pipeline), the run's ledger, who runs the units (in this process, or on
Ray: siblings above the stages), progress, and the checks that flag suspicious results."""
