"""The reference methods' math, checked on small tensors against values worked out by hand, and their
behaviour on a synthetic context (no models needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.toy import make_ctx, make_ctx_only  # noqa: I001  (tests/ is on the path under pytest)

from w2sbench.errors import UnknownNameError
from w2sbench.methods import list_methods, load_method

REFERENCE = [
    "vanilla",
    "vanilla_hard",
    "logconf",
    "product",
    "confident_only",
    "bootstrap",
    "window",
    "entropy",
    "strong_zeroshot",
    "majority",
    "icm",
]


def logits_for(p1: list[float]) -> torch.Tensor:
    """Logits [b, 2] whose softmax has p(label=1) = p1."""
    p = torch.tensor(p1, dtype=torch.float64)
    return torch.stack([torch.log(1 - p), torch.log(p)], dim=-1)


def xent(t1: float, p1: float) -> float:
    return -((1 - t1) * math.log(1 - p1) + t1 * math.log(p1))


def test_every_reference_method_is_registered():
    found = list_methods()
    for name in REFERENCE:
        assert found[name] == "built-in"
        assert load_method(name).name == name
    assert not load_method("strong_zeroshot").uses_weak_labels
    assert load_method("majority").uses_weak_labels
    with pytest.raises(UnknownNameError, match="did you mean 'logconf'"):
        load_method("logconff")


def test_the_lazy_table_names_every_builtin_class_and_registering_refuses_its_names():
    """Every Method defined in builtin.py is in the registry's table under its own name (a new built-in that
    is not listed fails here), and register_method cannot shadow a built-in."""
    import inspect

    from w2sbench.methods import Method, builtin, register_method
    from w2sbench.methods.registry import BUILTIN

    defined = {
        cls.name: f"w2sbench.methods.builtin:{cls.__name__}"
        for cls in vars(builtin).values()
        if inspect.isclass(cls) and issubclass(cls, Method) and cls.__module__ == builtin.__name__
    }
    assert defined == BUILTIN and len(BUILTIN) == len(REFERENCE)

    class Shadow(Method):
        name = "vanilla"

    with pytest.raises(ValueError, match="'vanilla' is a built-in's"):
        register_method(Shadow)

    class Mine(Method):
        name = "mine_for_this_test"

    assert register_method(Mine) is Mine
    assert load_method("mine_for_this_test") is Mine and list_methods()["mine_for_this_test"] == "registered"


def test_vanilla_loss_by_hand():
    loss = load_method("vanilla")().loss(logits_for([0.5, 0.25]), torch.tensor([1.0, 0.5], dtype=torch.float64), 0.0)
    assert loss.tolist() == pytest.approx([math.log(2), xent(0.5, 0.25)])


def test_vanilla_hard_targets_threshold_at_half():
    ctx = make_ctx_only(weak=[0.2, 0.5, 0.7, 0.49])
    targets, weights = load_method("vanilla_hard")().targets(ctx)
    assert targets.tolist() == [0.0, 1.0, 1.0, 0.0] and weights is None


def test_logconf_by_hand():
    m = load_method("logconf")()
    p1 = [0.1, 0.4, 0.7, 0.8]  # p0 = 0.9, 0.6, 0.3, 0.2
    w = torch.tensor([0.1, 0.2, 0.9, 0.6], dtype=torch.float64)  # mean 0.45
    # threshold = quantile of p0 {0.2, 0.3, 0.6, 0.9} at 0.45: position 1.35 -> 0.3 + 0.35 * 0.3 = 0.405;
    # hardened = 1[p0 < 0.405] = [0, 0, 1, 1]; step_frac 0.1 of warm-up 0.2 -> c = 0.5 * 0.5 = 0.25
    t = [0.75 * wi + 0.25 * si for wi, si in zip([0.1, 0.2, 0.9, 0.6], [0, 0, 1, 1])]
    assert t == pytest.approx([0.075, 0.15, 0.925, 0.7])
    got = m.loss(logits_for(p1), w, 0.1)
    assert got.tolist() == pytest.approx([xent(ti, pi) for ti, pi in zip(t, p1)])
    # no auxiliary term at the start; the full aux_coef = 0.5 after warm-up
    assert m.loss(logits_for(p1), w, 0.0).tolist() == pytest.approx([xent(wi, pi) for wi, pi in zip(w.tolist(), p1)])
    t_full = [0.5 * wi + 0.5 * si for wi, si in zip([0.1, 0.2, 0.9, 0.6], [0, 0, 1, 1])]
    assert m.loss(logits_for(p1), w, 0.7).tolist() == pytest.approx([xent(ti, pi) for ti, pi in zip(t_full, p1)])
    assert (m.coef(0.0), m.coef(0.1), m.coef(0.2), m.coef(1.0)) == pytest.approx((0.0, 0.25, 0.5, 0.5))


def test_product_by_hand():
    # p = (0.8, 0.2), w = (0.4, 0.6): target ∝ (0.32, 0.12) -> t1 = 3/11
    loss = load_method("product")().loss(logits_for([0.2]), torch.tensor([0.6], dtype=torch.float64), 0.5)
    assert loss.item() == pytest.approx(xent(3 / 11, 0.2))


def test_window_by_hand():
    # radius 0.15: only max prob < 0.65 trains; 0.7 and 0.9 are outside the window and contribute 0
    loss = load_method("window")().loss(
        logits_for([0.5, 0.7, 0.1]), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), 0.5
    )
    assert loss.tolist() == pytest.approx([math.log(2), 0.0, 0.0])


def test_entropy_value_and_gradient_by_hand():
    m = load_method("entropy")()
    z = logits_for([0.25]).clone().requires_grad_(True)
    loss = m.loss(z, torch.tensor([1.0], dtype=torch.float64), 1.0)  # c = 0.5
    # target t1 = 0.5 * 1 + 0.5 * 0.25 = 0.625
    assert loss.item() == pytest.approx(xent(0.625, 0.25))
    loss.sum().backward()
    # d/d(z1 - z0) of 0.5 CE(w, p) + 0.5 H(p) with p1 = 0.25:
    # CE' = p1 - w = -0.75; H' = -p1 (1 - p1) ln(p1 / (1 - p1)) = 0.1875 ln 3
    dz = 0.5 * -0.75 + 0.5 * 0.1875 * math.log(3)
    assert z.grad[0].tolist() == pytest.approx([-dz, dz])


def test_confident_only_subset_by_hand():
    m = load_method("confident_only")()
    assert m.subset(np.array([0.1, 0.3, 0.5, 0.8, 0.75, 0.25])).tolist() == [0, 3]
    assert m.subset(np.array([0.4, 0.6])).tolist() == [0, 1]  # nothing confident: fall back to all


# ---- a synthetic context: features that separate the classes, noisy weak labels ------------------------------
def test_loss_methods_learn_on_synthetic_features():
    for name in ("vanilla", "vanilla_hard", "logconf", "product", "window", "entropy", "confident_only", "bootstrap"):
        ctx, y = make_ctx()
        probs = load_method(name)().run(ctx)
        assert probs.shape == (20,) and np.all((probs >= 0) & (probs <= 1))
        assert np.mean((probs >= 0.5) == y) >= 0.9, name
        assert "weak soft labels on train_unlabel" in ctx.saw


def test_confident_only_trains_on_the_subset_and_bootstrap_retrains():
    weak = [0.1, 0.3, 0.5, 0.8, 0.75, 0.25, 0.9, 0.05]
    ctx = make_ctx_only(weak=weak)
    load_method("confident_only")().run(ctx)
    assert ctx.compute["train_examples"] == 4  # 0.1, 0.8, 0.9, 0.05
    assert ctx.compute["kept_fraction"] == pytest.approx(0.5)
    ctx = make_ctx_only()
    load_method("bootstrap")().run(ctx)
    assert ctx.compute["train_examples"] == 3 * 60  # the first fit and 2 relabel rounds
    assert ctx.compute["train_example_epochs"] == 3 * 60 * 20
    assert ctx.compute["predict_examples"] == 2 * 60 + 20


def test_majority_predicts_the_weak_positive_rate_everywhere():
    ctx = make_ctx_only(weak=[0.9, 0.8, 0.2])
    probs = load_method("majority")().run(ctx)
    assert probs.tolist() == pytest.approx([2 / 3] * 20)
    assert ctx.compute["train_examples"] == 0


def test_strong_zeroshot_uses_the_backend_not_the_weak_labels():
    seen = {}

    def fake_label_probs(role, prompts, words):
        seen.update(role=role, prompts=prompts, words=words)
        return np.tile([[0.3, 0.7]], (len(prompts), 1))

    ctx = make_ctx_only(label_probs=fake_label_probs)
    probs = load_method("strong_zeroshot")().run(ctx)
    assert probs.tolist() == pytest.approx([0.7] * 20)
    assert seen["role"] == "strong" and seen["words"] == [" no", " yes"] and seen["prompts"][0] == "Q: t0\nA:"
    assert ctx.compute["inference_prompts"] == 20
    assert not any(s.startswith("weak") for s in ctx.saw)


def test_context_refuses_train_label_and_copies_weak_labels():
    ctx = make_ctx_only()
    with pytest.raises(ValueError, match="only 'train_unlabel' and 'test'"):
        ctx.strong_features("train_label")
    w = ctx.weak_unlabel
    w[:] = 0
    assert ctx.weak_unlabel.max() > 0  # a method cannot corrupt the shared weak labels
    assert ctx.rng.random() != ctx.rng.random()  # one stream, not a fresh generator each read


# ---- hyperparameters: typed class fields ----------------------------------------------------------------------
def test_builtin_hyperparameters_and_defaults_are_unchanged():
    """The declared fields give exactly the configs the hand-written config() methods returned (the cache
    keys and the reference numbers depend on them)."""
    expected = {
        "vanilla": {},
        "vanilla_hard": {},
        "logconf": {"aux_coef": 0.5, "warmup_frac": 0.2},
        "entropy": {"aux_coef": 0.5, "warmup_frac": 0.2},  # inherited from logconf
        "product": {"alpha": 1.0, "beta": 1.0},
        "window": {"radius": 0.15},
        "confident_only": {"low": 0.25, "high": 0.75},
        "bootstrap": {"rounds": 2, "mix": 0.5},
        "strong_zeroshot": {},
        "majority": {},
        "icm": {"ridge": 1.0, "prior_weight": 0.5, "sweeps": 30, "start_temperature": 0.1, "end_temperature": 0.01},
    }
    for name, config in expected.items():
        cls = load_method(name)
        assert cls().config() == config, name
        assert [type(v) for v in cls().config().values()] == [type(v) for v in config.values()], name
        assert list(cls.hyperparameters) == list(config), name
        assert cls().run_name == name  # defaults keep the plain name
    assert load_method("bootstrap").hyperparameters["rounds"].type is int


def test_configured_method_uses_its_values_in_the_math():
    m = load_method("logconf")(aux_coef=0.25, warmup_frac=0.5)
    assert m.config() == {"aux_coef": 0.25, "warmup_frac": 0.5}
    assert m.run_name == "logconf[aux_coef=0.25,warmup_frac=0.5]"
    assert (m.coef(0.0), m.coef(0.25), m.coef(0.5), m.coef(1.0)) == pytest.approx((0.0, 0.125, 0.25, 0.25))
    # window radius 0.3: only max prob < 0.8 trains; 0.7 now trains, 0.9 does not
    loss = load_method("window")(radius=0.3).loss(
        logits_for([0.5, 0.7, 0.1]), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), 0.5
    )
    assert loss.tolist() == pytest.approx([math.log(2), xent(0.0, 0.7), 0.0])
    assert load_method("confident_only")(low=0.1, high=0.9).subset(np.array([0.05, 0.2, 0.95])).tolist() == [0, 2]
    assert load_method("logconf")().aux_coef == 0.5  # the class default is untouched
    assert load_method("logconf")(aux_coef=1).config()["aux_coef"] == 1.0  # an int for a float: one config
    assert type(load_method("logconf")(aux_coef=1).aux_coef) is float


def test_bad_overrides_name_the_field_and_the_type():
    from w2sbench.methods import HyperparameterError

    logconf = load_method("logconf")
    with pytest.raises(HyperparameterError, match=r"no hyperparameter 'aux_cof'; did you mean 'aux_coef'\?") as e:
        logconf(aux_cof=0.1)
    assert "aux_coef (float, default 0.5), warmup_frac (float, default 0.2)" in str(e.value)
    with pytest.raises(HyperparameterError, match=r"hyperparameter aux_coef must be a float, got 'high' \(str\)"):
        logconf(aux_coef="high")
    with pytest.raises(HyperparameterError, match=r"aux_coef must be a float, got True \(bool\)"):
        logconf(aux_coef=True)
    with pytest.raises(HyperparameterError, match=r"rounds must be an int, got 1.5 \(float\)"):
        load_method("bootstrap")(rounds=1.5)
    with pytest.raises(HyperparameterError, match="'vanilla' has no hyperparameter 'eps': it declares none"):
        load_method("vanilla")(eps=0.1)


def test_declaring_hyperparameters():
    from typing import ClassVar, Literal

    from w2sbench.methods import LossMethod

    class Base(LossMethod):
        name = "base_test"
        eps: float = 0.1
        mode: Literal["soft", "hard"] = "soft"
        steps: int = 3
        verbose: bool = False
        cache_size: ClassVar[int] = 10  # a ClassVar is not a hyperparameter
        _private: float = 1.0  # nor a private name

    class Child(Base):
        name = "child_test"
        eps = 0.2  # a new default for an inherited field
        extra: str = "x"

    assert list(Base.hyperparameters) == ["eps", "mode", "steps", "verbose"]
    assert Child().config() == {"eps": 0.2, "mode": "soft", "steps": 3, "verbose": False, "extra": "x"}
    assert Base().config()["eps"] == 0.1
    assert Child(mode="hard", eps=0.1).run_name == "child_test[eps=0.1,mode=hard]"
    with pytest.raises(Exception, match="must be one of soft, hard, got 'medium'"):
        Base(mode="medium")
    with pytest.raises(TypeError, match="needs a default"):

        class NoDefault(LossMethod):
            name = "no_default"
            eps: float

    with pytest.raises(TypeError, match="bool, int, float, str or Literal"):

        class BadType(LossMethod):
            name = "bad_type"
            eps: list = []  # noqa: RUF012

    with pytest.raises(Exception, match="eps must be a float, got 'a'"):

        class BadDefault(LossMethod):
            name = "bad_default"
            eps: float = "a"


def test_method_specs_from_the_command_line():
    from w2sbench.errors import W2SError
    from w2sbench.isolation.resolve import resolve_methods

    ms = resolve_methods("vanilla, logconf[aux_coef=0.25,warmup_frac=0], bootstrap[rounds=3,mix=1]")
    assert [m.run_name for m in ms] == [
        "vanilla",
        "logconf[aux_coef=0.25,warmup_frac=0.0]",
        "bootstrap[rounds=3,mix=1.0]",
    ]
    assert ms[1].config() == {"aux_coef": 0.25, "warmup_frac": 0.0} and ms[2].rounds == 3
    # a name in results selects the same configuration again
    again = resolve_methods(ms[1].run_name)[0]
    assert again.config() == ms[1].config() and type(again) is type(ms[1])
    # a sweep: one method per value, every combination of swept fields, in the order given
    sweep = resolve_methods("logconf[aux_coef=0.1|0.5|0.9,warmup_frac=0|0.2]")
    assert [(m.aux_coef, m.warmup_frac) for m in sweep] == [
        (0.1, 0.0), (0.1, 0.2), (0.5, 0.0), (0.5, 0.2), (0.9, 0.0), (0.9, 0.2)
    ]  # fmt: skip
    assert sweep[3].run_name == "logconf"  # the defaults: the plain name
    # classes and instances pass through
    logconf = load_method("logconf")
    assert [m.run_name for m in resolve_methods([logconf, logconf(aux_coef=0.3), "vanilla"])] == [
        "logconf",
        "logconf[aux_coef=0.3]",
        "vanilla",
    ]
    for bad, message in [
        ("logconf[aux_coef=0.5],logconf", "'logconf' is given twice"),
        ("logconf[aux_coef]", "'aux_coef' is not key=value"),
        ("logconf[aux_coef=0.1", "'\\[' without '\\]'"),
        ("logconf[aux_coef=x]", "aux_coef must be a float, got 'x'"),
        ("logconf[aux_coef=0.1,aux_coef=0.2]", "aux_coef is given twice"),
        ("logconf[warmup=0.1]", "did you mean 'warmup_frac'"),
        ("bootstrap[rounds=2.5]", "rounds must be an int, got '2.5'"),
    ]:
        with pytest.raises(W2SError, match=message):
            resolve_methods(bad)


# ---- icm: the teacher-free floor ---------------------------------------------------------------------------------
def test_icm_finds_the_coherent_labelling_its_belief_points_to():
    """Two clusters along a direction the zero-shot belief only hints at (it ranks the rows 60% right): the
    search lands on the clusters, the same labels for the same seed, the mirror for a mirrored belief."""
    from w2sbench.methods.builtin import coherent_labels

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 8))
    x[:, 0] += 3 * (2 * y - 1)
    belief = np.clip(0.5 + 0.1 * (2 * y - 1) + rng.normal(0, 0.3, 300), 0.01, 0.99)
    assert 0.55 < np.mean((belief > np.median(belief)) == y) < 0.7
    labels = coherent_labels(x, belief, np.random.default_rng(1))
    assert np.mean(labels == y) >= 0.97
    assert np.array_equal(labels, coherent_labels(x, belief, np.random.default_rng(1)))
    assert np.array_equal(coherent_labels(x, 1 - belief, np.random.default_rng(1)), 1 - labels)
    # no belief at all (every row the same): the coherent split is still found, up to its sign
    flat = coherent_labels(x, np.full(300, 0.5), np.random.default_rng(1), prior_weight=0.0)
    assert max(np.mean(flat == y), np.mean(flat != y)) >= 0.97


def test_icm_is_teacher_free_and_trains_the_strong_student():
    n, n_test = 80, 40
    y_unlabel = np.random.default_rng(0).integers(0, 2, size=n + n_test)[:n]  # make_ctx's labels, by its seed
    noise = np.random.default_rng(5).normal(0, 0.2, n)
    asked = []

    def fake_label_probs(role, prompts, words):
        asked.append((role, len(prompts)))
        # a zero-shot belief that leans the right way on 70% of the texts or so (prompt i is text u{i})
        p1 = np.clip(0.5 + 0.1 * (2 * y_unlabel - 1) + noise, 0.01, 0.99)
        return np.stack([1 - p1, p1], axis=1)

    ctx, y = make_ctx(n=n, n_test=n_test, label_probs=fake_label_probs)
    method = load_method("icm")()
    assert not method.uses_weak_labels
    probs = method.run(ctx)
    assert probs.shape == (n_test,)
    assert np.mean((probs >= 0.5) == y) >= 0.9
    assert not any(s.startswith("weak soft labels") for s in ctx.saw)
    assert asked == [("strong", n)]
    assert ctx.compute["train_examples"] == n and ctx.compute["inference_prompts"] == n
    assert 0.3 < ctx.compute["icm_positive_fraction"] < 0.7


def test_icm_refuses_a_regime_without_fixed_features():
    from types import SimpleNamespace

    from w2sbench.errors import W2SError

    ctx = make_ctx_only(label_probs=lambda role, prompts, words: np.tile([[0.5, 0.5]], (len(prompts), 1)))
    ctx.trainer = SimpleNamespace(regime="lora", recipe=ctx.trainer.recipe)
    with pytest.raises(
        W2SError, match=r"^icm needs the strong model's frozen features; setting 'tiny' fine-tunes \(lora\)"
    ):
        load_method("icm")().run(ctx)
