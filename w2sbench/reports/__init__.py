"""Results and reports: the results JSON (results), per-example logs (samples), the printed table
(table), figures (plot), and how stable an order of methods is (robustness)."""
