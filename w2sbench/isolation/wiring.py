"""How one run isolates its methods: each method's code hashed once (what its stage key and the results
name), its OS sandbox (bubblewrap policy, recorded in the run's ledger), the quotas over it, and one sealed
process per method (w2sbench.isolation.sealed), started on a cache miss, kept for the run and ended with it
(`close`, which executors.execute calls when the units are done).

The stages ask this object for a method's process; they never build a sandbox themselves. A Ray worker
shares one set of processes between the pipelines it keeps for a run (`runners`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..errors import W2SError
from ..methods.base import Method
from ..methods.identity import MethodSource, method_source, origin_of
from . import quotas as quotas_
from . import sandbox, sealed
from .described import described


class MethodIsolation:
    def __init__(
        self,
        *,
        unsealed: bool,
        timeout_s: float,
        setting_quotas: quotas_.Quotas,
        quota_override: str | None,
        model_dirs: Callable[[], list[str]],
        sandbox_used: Callable[[dict, str, str], None],
        runners: dict[str, sealed.SealedRunner] | None = None,
        console_seen: Callable[[str, str], None] | None = None,
    ):
        """`model_dirs`: the two models' folders (the method may read them), asked for when first needed;
        `sandbox_used(description, method, code_root)`: where the sandbox is recorded (RunLedger.sandbox_used)."""
        self.unsealed, self.timeout_s = unsealed, timeout_s
        self._setting_quotas, self._quota_override = setting_quotas, quota_override
        self._model_dirs, self._sandbox_used = model_dirs, sandbox_used
        self._console_seen = console_seen or (lambda method, text: None)
        self.runners = {} if runners is None else runners  # method spec -> its process, started on a miss
        self._owned = runners is None  # a shared set (a Ray worker's) outlives this run: its owner ends it
        self.sources: dict[str, MethodSource] = {}  # method name -> the code that defines it, hashed

    def close(self) -> None:
        """End the method processes this run started, when its units are done. Without this they lived until
        the interpreter exited: a long-lived caller (the scoring service, which runs every job in-process; a
        notebook; a reproduction of several settings) kept one idle sandboxed process per method and run,
        with any inference engine it had started (4 to 8 GiB each), until memory ran out."""
        if not self._owned:
            return
        for spec in list(self.runners):
            self._end(spec)

    def _end(self, spec: str) -> None:
        runner = self.runners.pop(spec)
        runner.close()
        self._console_seen(runner.name, runner.console)

    @property
    def quotas(self) -> quotas_.Quotas:
        """The method sandbox's limits: the setting's, with --method-quota over them."""
        return quotas_.override(self._setting_quotas, self._quota_override)

    def check_available(self) -> None:
        """Fails before any work when the sandbox cannot start here or a quota is malformed."""
        if self.unsealed:
            return
        why = sandbox.unavailable_reason()
        if why:
            raise W2SError(
                f"the method sandbox cannot start here ({why}); install bubblewrap "
                "(apt-get install bubblewrap) or pass --unsealed (results then say sealed: false, "
                "and the leaderboard refuses them)"
            )
        self.quotas  # noqa: B018  (a malformed --method-quota fails here, before any work)

    def source(self, method_cls: type[Method]) -> MethodSource:
        """Hashed once per run: the method stage's key and the results name the code, not just the name."""
        if method_cls.name not in self.sources:
            self.sources[method_cls.name] = method_source(method_cls)
        return self.sources[method_cls.name]

    def policy(self, method_cls: type[Method]) -> sandbox.Policy | None:
        """The method's OS sandbox (None when unsealed), recorded in the ledger. Recorded for every method of
        the run, also one whose stages are all cache hits: such a run's predictions came from sealed runs too,
        because an unsealed run's method artifacts carry a key of their own."""
        if self.unsealed:
            return None
        root = str(self.source(method_cls).root)
        policy = sandbox.default_policy(self._model_dirs(), [root])
        limits = self.quotas
        policy = dataclasses.replace(policy, tmp_bytes=limits.tmp, shm_bytes=limits.shm)
        description = {**sandbox.describe(policy), "quotas": limits.record(quotas_.enforcement(limits))}
        self._sandbox_used(description, method_cls.name, root)
        return policy

    def runner(self, method_cls: type[Method]) -> sealed.SealedRunner:
        """The method's process, in a sandbox that may read its own code and the two models' folders."""
        found = described(method_cls)
        if found is None and origin_of(method_cls)["kind"] != "builtin":  # a harness bug, never a method's
            raise W2SError(f"method {method_cls.name!r} reached its process without its sandbox's description")
        code = sealed.MethodCode(
            origin=origin_of(method_cls),
            class_name=method_cls.__qualname__,
            sha256=self.source(method_cls).sha256,
            description=None if found is None else found[0],
        )
        spec = code.spec()
        # One engine at a time: units run task by task, each method's seeds in a row, and a method process
        # keeps its engine until its next task, so with two methods that prompt a model (strong_zeroshot,
        # icm) both engines stayed up, 17 GiB of a 24 GiB machine on `tiny`. A process that used an engine is
        # ended before another method's job; its next job, on the next task, would have restarted the engine.
        for other in [s for s, r in self.runners.items() if s != spec and r.used_engine]:
            self._end(other)
        if spec not in self.runners:
            policy = self.policy(method_cls)
            self.runners[spec] = sealed.SealedRunner(
                code, method_cls.name, policy, self.timeout_s, None if policy is None else self.quotas
            )
        return self.runners[spec]
