"""Training and scoring throughput of the aar-qwen shapes with random weights: one prepared script.

What it measures (one JSON line per measurement, on stdout):
- strong_train: LoRA training of the strong model (Qwen/Qwen3-4B-Base shape, r=32 alpha=32 on all linear
  layers, sequence 512): tokens/s, MFU counting 4N FLOPs per token (N = non-embedding parameters: forward 2N,
  backward through the frozen weights 2N; attention's own FLOPs not counted), peak GPU memory;
  impl "baseline" is plain transformers + peft (bf16 weights, full-vocabulary logits at every position,
  unfused AdamW), impl "w2sbench" is w2sbench.training.finetune.train_student with aar-qwen's own recipe
  (w2sbench/settings/aar-qwen.yaml: rsLoRA on the seven projections, betas (0.9, 0.95), clipping at 1;
  AdamW 8-bit where bitsandbytes imports, else fused AdamW, said in the record) and each readout ("head"):
  label_tokens (what aar-qwen trains: the LM head on the answer position's hidden state only, full-vocabulary
  cross-entropy there) and linear (last-token hidden state into a 2-way head); sdpa, bf16 autocast with fp32
  adapters, activation checkpointing when asked, optional torch.compile; all side by side in one process;
  the first training line is aar-qwen exactly as configured (batch 32 in one micro-batch, checkpointing on,
  label_tokens);
- weak_score: scoring throughput of the weak model (Qwen/Qwen1.5-0.5B-Chat shape): baseline = the causal LM
  with last-position logits only (logits_to_keep=1), w2sbench = FineTunedStudent.predict_ids under each
  readout (label_tokens: the LM head at the last token; linear: the hidden state into the head).

Usage: python benchmarks/gpu_training.py            # on one H100/H200: a few minutes
       python benchmarks/gpu_training.py --smoke    # CPU, scaled-down shapes, seconds (the test runs it)
No weights are downloaded: the architectures are built from their configs (tests/random_models.py).

On the lent device machine (its image has torch, transformers and peft; nothing else is needed):
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_training.py --compile --time-budget 420 | tee $OUT/gpu.jsonl
Every configuration is guarded: an out-of-memory or any other failure becomes an {"error": ...} line and the
run goes on; once --time-budget seconds have passed, the remaining configurations are skipped (one line
each), so a single call of bounded length always returns the headline comparison (batch 8) first.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from datetime import datetime, timezone
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # random_models: test-only builders
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from random_models import count_parameters, random_config, random_model  # noqa: E402

from w2sbench.training import Recipe  # noqa: E402
from w2sbench.training.finetune import build_student, train_student  # noqa: E402

STRONG = "Qwen/Qwen3-4B-Base"
WEAK = "Qwen/Qwen1.5-0.5B-Chat"
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}
"""Dense bf16 tensor-core peak FLOP/s by card (SXM parts; MFU is relative to these)."""


def aar_train() -> dict[str, Any]:
    """aar-qwen's train block, read from its YAML with PyYAML (a dependency of transformers): loading it through
    w2sbench.settings would import platformdirs and jsonschema, which the GPU machine's image lacks."""
    import yaml

    path = Path(__file__).resolve().parent.parent / "w2sbench" / "settings" / "aar-qwen.yaml"
    return dict(yaml.safe_load(path.read_text())["train"])


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def device_info(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return name, peak


def free(*objects: Any) -> None:
    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def build(model_id: str, args: argparse.Namespace, device: torch.device) -> Any:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    return random_model(model_id, scale=args.scale, seed=0, dtype=dtype, device=device, **args.overrides)


def random_ids(n: int, seq: int, vocab: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(100, vocab, size=(n, seq)).tolist()


def rate(tokens: float, seconds: float, n_params: int, peak: float | None, flops_per_param: int) -> dict[str, Any]:
    tps = tokens / seconds
    mfu = flops_per_param * n_params * tps / peak if peak else None
    return {"tokens_per_s": round(tps, 1), "mfu": round(mfu, 4) if mfu is not None else None}


# ------------------------------------------------------------------------------------------------- train


def train_baseline(
    args: argparse.Namespace, device: torch.device, batch: int, n_params: int, peak: float | None
) -> dict:
    from peft import LoraConfig, get_peft_model

    model = build(STRONG, args, device)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=32, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.config.vocab_size
    label_ids = torch.tensor([vocab - 2, vocab - 1], device=device)
    ids = torch.tensor(random_ids(batch * (args.steps + args.warmup), args.seq, vocab, 1), device=device)
    targets = torch.randint(0, 2, (ids.shape[0],), device=device)
    reset_peak(device)
    seconds = 0.0
    for step in range(args.steps + args.warmup):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        x = ids[step * batch : (step + 1) * batch]
        logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits  # [b, L, vocab]
        loss = torch.nn.functional.cross_entropy(
            logits[:, -1, label_ids].float(), targets[step * batch : (step + 1) * batch]
        )
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            seconds += time.perf_counter() - began
    out = {
        "bench": "strong_train",
        "impl": "baseline",
        "batch": batch,
        "micro_batch": batch,
        "checkpointing": False,
        "compile": False,
        **rate(batch * args.seq * args.steps, seconds, n_params, peak, 4),
        "peak_gib": peak_gib(device),
    }
    free(model, opt, ids)
    return out


def optimizer_name() -> str:
    """aar-qwen's optimizer (adamw_8bit) where bitsandbytes imports, else fused AdamW."""
    try:
        import bitsandbytes  # noqa: F401

        return "adamw_8bit"
    except Exception:  # noqa: BLE001 - missing or broken: the record says which optimizer ran
        return "adamw"


def aar_recipe(batch: int, micro: int, checkpointing: bool, compile_: bool, head: str) -> Recipe:
    """aar-qwen's training recipe at a given batch, micro-batch, checkpointing, compile and readout."""
    train = aar_train()
    train.update(
        epochs=1,
        batch_size=batch,
        grad_accum=max(1, batch // micro),
        gradient_checkpointing=checkpointing,
        compile=compile_,
        head=head,
        optimizer=optimizer_name(),
    )
    return Recipe.from_dict(train)


def train_ours(
    args: argparse.Namespace,
    device: torch.device,
    batch: int,
    micro: int,
    checkpointing: bool,
    compile_: bool,
    n_params: int,
    peak: float | None,
    head: str = "label_tokens",
) -> dict:
    model = build(STRONG, args, device)
    recipe = aar_recipe(batch, micro, checkpointing, compile_, head)
    vocab = model.config.vocab_size
    student = build_student(
        model, recipe, seed=0, pooling="last", device=str(device), causal=True, label_ids=[vocab - 2, vocab - 1]
    )
    n = batch * (args.steps + args.warmup)
    ids = random_ids(n, args.seq, model.config.vocab_size, 2)
    targets = np.random.default_rng(3).random(n).astype(np.float32)
    reset_peak(device)
    history = train_student(student, ids, targets, recipe, seed=0, max_steps=args.steps + args.warmup)
    measured = history[args.warmup :]
    seconds = sum(h["seconds"] for h in measured)
    tokens = sum(h["tokens"] for h in measured)
    out = {
        "bench": "strong_train",
        "impl": "w2sbench",
        "head": head,
        "optimizer": recipe.optimizer,
        "batch": batch,
        "micro_batch": recipe.micro_batch_size,
        "checkpointing": checkpointing,
        "compile": compile_,
        **rate(tokens, seconds, n_params, peak, 4),
        "peak_gib": peak_gib(device),
        "loss_first_last": [round(history[0]["loss"], 4), round(history[-1]["loss"], 4)],
        "memory_fallbacks": student.meta.get("memory_fallbacks", []),
    }
    free(student, model)
    return out


# ------------------------------------------------------------------------------------------------- score


def score(args: argparse.Namespace, device: torch.device, n_params: int, peak: float | None) -> list[dict]:
    model = build(WEAK, args, device).eval()
    vocab = model.config.vocab_size
    n = args.score_batch * (args.steps + args.warmup)
    ids = random_ids(n, args.seq, vocab, 4)
    records = []
    # baseline: the causal LM, logits of the last position only
    x_all = torch.tensor(ids, device=device)
    seconds = 0.0
    with torch.inference_mode():
        for step in range(args.steps + args.warmup):
            x = x_all[step * args.score_batch : (step + 1) * args.score_batch]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began = time.perf_counter()
            model(
                input_ids=x, attention_mask=torch.ones_like(x), logits_to_keep=1, use_cache=False
            ).logits.float().cpu()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= args.warmup:
                seconds += time.perf_counter() - began
    examples = args.score_batch * args.steps
    records.append(
        {
            "bench": "weak_score",
            "impl": "baseline",
            "batch": args.score_batch,
            "examples_per_s": round(examples / seconds, 1),
            **rate(examples * args.seq, seconds, n_params, peak, 2),
        }
    )
    # ours: the student's scoring path under each readout (LM head at the last token, or hidden state into the head)
    for head in args.heads:
        recipe = aar_recipe(1, 1, False, False, head)
        student = build_student(
            model, recipe, seed=0, device=str(device), causal=True, label_ids=[vocab - 2, vocab - 1]
        )
        student.predict_ids(ids[: args.score_batch * args.warmup], batch_size=args.score_batch)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        student.predict_ids(ids[args.score_batch * args.warmup :], batch_size=args.score_batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
        records.append(
            {
                "bench": "weak_score",
                "impl": "w2sbench",
                "head": head,
                "batch": args.score_batch,
                "examples_per_s": round(examples / seconds, 1),
                **rate(examples * args.seq, seconds, n_params, peak, 2),
                "note": "includes the unmerged LoRA adapters (r=32); merged weights score as the baseline",
            }
        )
        model = student.model.unload()  # the bare model again for the next readout
        free(student)
    free(model)
    return records


# -------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU-sized shapes (scale 1/16, seq 32, 2 steps)")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batches", default="8,16,32", help="optimizer batch sizes to measure")
    parser.add_argument("--steps", type=int, default=5, help="measured steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps first")
    parser.add_argument("--score-batch", type=int, default=64)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile of the backbone")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--heads", default="label_tokens,linear", help="readouts to measure (label_tokens is what aar-qwen trains)"
    )
    parser.add_argument(
        "--time-budget", type=float, default=None, help="seconds after which configurations not yet started are skipped"
    )
    args = parser.parse_args(argv)
    args.heads = [h for h in args.heads.split(",") if h]
    args.scale, args.overrides = 1.0, {}
    if args.smoke:
        args.scale, args.overrides = 1 / 16, {"vocab_size": 4096, "bos_token_id": 1, "eos_token_id": 2}
        args.seq, args.steps, args.warmup, args.score_batch = min(args.seq, 32), 2, 1, 4
        args.batches = "4"
        torch.set_num_threads(min(2, torch.get_num_threads()))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name, peak = device_info(device)
    n_strong = count_parameters(random_config(STRONG, args.scale, **args.overrides), embeddings=False)
    n_weak = count_parameters(random_config(WEAK, args.scale, **args.overrides), embeddings=False)
    emit(
        {
            "bench": "env",
            "device": name,
            "peak_flops": peak,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "peft": version("peft"),
            "seq": args.seq,
            "scale": args.scale,
            "strong": STRONG,
            "strong_non_embedding_params": n_strong,
            "weak": WEAK,
            "weak_non_embedding_params": n_weak,
        }
    )
    began = time.perf_counter()

    def guarded(label: dict[str, Any], run: Any) -> None:
        """Emit run()'s record(s), or one line saying why there are none; never stop the whole benchmark."""
        if args.time_budget is not None and time.perf_counter() - began > args.time_budget:
            emit({**label, "skipped": f"time budget of {args.time_budget:.0f} s spent"})
            return
        try:
            out = run()
        except Exception as exc:  # noqa: BLE001 - one failed configuration must not cost the others
            message = "out of memory" if isinstance(exc, torch.OutOfMemoryError) else f"{type(exc).__name__}: {exc}"
            out = {**label, "error": message.splitlines()[0][:300]}
        free()
        for record in out if isinstance(out, list) else [out]:
            emit(record)

    guarded({"bench": "weak_score"}, partial(score, args, device, n_weak, peak))
    done: set[tuple] = set()  # configurations measured already
    if "label_tokens" in args.heads:  # aar-qwen exactly as configured: batch 32 in one micro-batch, checkpointing
        aar = aar_train()
        batch = 4 if args.smoke else int(aar["batch_size"])
        micro = batch // int(aar.get("grad_accum", 1))
        guarded(
            {
                "bench": "strong_train",
                "impl": "w2sbench",
                "head": "label_tokens",
                "batch": batch,
                "setting": "aar-qwen",
            },
            partial(train_ours, args, device, batch, micro, True, False, n_strong, peak, "label_tokens"),
        )
        done.add((batch, micro, True, False, "label_tokens"))
    for batch in [int(b) for b in args.batches.split(",") if b]:
        if not args.no_baseline:
            guarded(
                {"bench": "strong_train", "impl": "baseline", "batch": batch},
                partial(train_baseline, args, device, batch, n_strong, peak),
            )
        variants = [(min(batch, 8), False)] + ([(batch, True)] if batch > 8 or args.smoke else [])
        for micro, ckpt in variants:
            for compile_ in [False, True] if args.compile else [False]:
                for head in args.heads:
                    if (batch, micro, ckpt, compile_, head) in done:
                        continue
                    guarded(
                        {
                            "bench": "strong_train",
                            "impl": "w2sbench",
                            "head": head,
                            "batch": batch,
                            "micro_batch": micro,
                            "checkpointing": ckpt,
                            "compile": compile_,
                        },
                        partial(train_ours, args, device, batch, micro, ckpt, compile_, n_strong, peak, head),
                    )


if __name__ == "__main__":
    main()
