"""An example external w2sbench method: train on the weak labels sharpened by a temperature.

target = w^(1/T) / (w^(1/T) + (1 - w)^(1/T)); T < 1 pushes the weak labels towards 0 and 1, T = 1 is
vanilla. Installed, it is found through the `w2sbench.methods` entry point; without installing,
`--method examples/w2sbench-example-method/w2sbench_example_method/__init__.py:Sharpen` works too.
"""

from __future__ import annotations

import numpy as np

from w2sbench.methods import LossMethod, MethodContext


class Sharpen(LossMethod):
    """Vanilla cross-entropy on temperature-sharpened weak labels (an example plug-in)."""

    name = "sharpen"
    description = "weak labels sharpened with temperature 0.5, then vanilla (example plug-in)"

    temperature: float = 0.5  # a hyperparameter: `--method 'sharpen[temperature=0.25]'`

    def targets(self, ctx: MethodContext) -> tuple[np.ndarray, None]:
        w = np.clip(ctx.weak_unlabel.astype(np.float64), 1e-6, 1 - 1e-6)
        a, b = w ** (1 / self.temperature), (1 - w) ** (1 / self.temperature)
        return (a / (a + b)).astype(np.float32), None
