"""One training step of a real-size encoder (XLM-R base shape), GPU vs CPU (issue: training).

The model is built from an ``XLMRobertaConfig`` with random weights (no download),
with a sequence-classification head, and trained with AdamW on random token ids:
forward, backward and optimizer step, as a run of ``seqrob train`` does on XNLI.
Prints milliseconds per step and examples per second for each device and
precision; without a GPU it says so and times the CPU alone.

    python benchmarks/gpu_encoder_step.py
    python benchmarks/gpu_encoder_step.py --batch 32 --length 128 --steps 20 --cpu-batch 8 --cpu-steps 2

On a 2-core CPU a step of batch 8 takes about half a minute; the whole script, a few
minutes. On an H100 it takes well under a minute besides the CPU part (--no-cpu).
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification


def xlmr_base(vocab_size: int) -> XLMRobertaConfig:
    """XLM-R base: 12 layers, 768 wide, 12 heads, 3072 FFN, 250k vocabulary."""
    return XLMRobertaConfig(
        vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, num_labels=3,
    )  # fmt: skip


def time_steps(device: str, dtype: torch.dtype | None, batch: int, length: int, steps: int, vocab_size: int) -> dict:
    """Mean seconds per training step after warm-up (two steps on a GPU, one on the CPU)."""
    torch.manual_seed(0)
    model = XLMRobertaForSequenceClassification(xlmr_base(vocab_size)).to(device)
    model.train()
    fused = device == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=fused)
    ids = torch.randint(5, vocab_size, (batch, length), device=device)
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 3, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2 if device == "cuda" else 1):
        step()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {"seconds": seconds, "examples_per_s": batch / seconds, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed GPU steps")
    parser.add_argument("--cpu-steps", type=int, default=2, help="timed CPU steps (each takes many seconds)")
    parser.add_argument(
        "--cpu-batch", type=int, default=8, help="CPU batch (smaller: a CPU step is slow; compare examples/s)"
    )
    parser.add_argument("--vocab-size", type=int, default=250002, help="250002 = XLM-R's vocabulary")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU timing")
    args = parser.parse_args()

    print(f"torch {torch.__version__}; CPU threads {torch.get_num_threads()} of {os.cpu_count()} cores")
    print(f"model: XLM-R base shape, random init, {args.vocab_size} vocabulary; sequence length {args.length}")
    rows = []
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        for label, dtype in (("fp32", None), ("bf16 autocast", torch.bfloat16)):
            result = time_steps("cuda", dtype, args.batch, args.length, args.steps, args.vocab_size)
            rows.append((f"GPU {name}", label, args.batch, result))
            torch.cuda.empty_cache()  # the model of this timing is gone; free its memory for the next
    else:
        print("GPU: unavailable (torch.cuda.is_available() is False) - timing the CPU only")
    if not args.no_cpu:
        batch = args.cpu_batch
        result = time_steps("cpu", None, batch, args.length, args.cpu_steps, args.vocab_size)
        rows.append(("CPU", "fp32", batch, result))
    print(f"{'device':<32} {'precision':<14} {'batch':>5} {'ms/step':>10} {'examples/s':>11} {'peak GiB':>9}")
    for device, label, batch, r in rows:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        print(f"{device:<32} {label:<14} {batch:>5} {r['seconds'] * 1e3:>10.1f} {r['examples_per_s']:>11.1f} {peak:>9}")
    cpu = next((r for d, _, _, r in rows if d == "CPU"), None)
    for device, label, _, r in rows:
        if cpu is not None and device != "CPU":
            print(
                f"speed-up of {device} {label} over the CPU: {r['examples_per_s'] / cpu['examples_per_s']:.0f}x examples/s"
            )


if __name__ == "__main__":
    main()
