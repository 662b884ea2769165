"""MoEfied FFN vs dense FFN on CPU, side by side in one run (not a timed test).

Setting of the issue: d = 768, d_ff = 3072 split into E = 96 experts of 32 neurons, 512 tokens,
K = 20, 40, 60, 80 active experts, float32, ReLU.  Printed per K (median and minimum of repeated,
interleaved timings, in ms):

* ``dense``     -- ``W_out relu(W_in x + b_in) + b_out`` with torch's fused linear layers;
* ``experts``   -- :meth:`MoEFFN.grouped_forward` on a given selection (token grouping by expert,
  one gather, two matrix products per expert on contiguous slices of preallocated buffers, one
  ``index_add_``);
* ``mlp router``-- MoEfication's MLP router (``d -> E -> E``) + top-K: the router that makes the
  sparse model fast;
* ``gt router`` -- the "ground-truth" router (full ``W_in x``, ReLU, per-expert sums, top-K), shown
  for reference: it costs about half of the dense FFN by itself;
* ``speed-up``  -- dense / (experts + mlp router); ``ideal`` = E / K;
* ``masked``    -- the dense product with the unselected experts zeroed (no saving, for reference).

Run: ``python bench/bench_moefication.py [--threads 1] [--repeats 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from moe_companion.heavy.moefication import (
    MLPRouter,
    MoEFFN,
    expert_scores,
    topk_experts,
)


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1e3 * (time.perf_counter() - t0))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    d, d_ff, e, t = 768, 3072, 96, a.tokens
    g = torch.Generator().manual_seed(a.seed)
    w_in = torch.randn(d_ff, d, generator=g) / d**0.5
    b_in = torch.randn(d_ff, generator=g) * 0.1
    w_out = torch.randn(d, d_ff, generator=g) / d_ff**0.5
    b_out = torch.randn(d, generator=g) * 0.1
    labels = np.random.default_rng(a.seed).permutation(np.repeat(np.arange(e), d_ff // e))
    x = torch.randn(t, d, generator=g)
    moe = MoEFFN(w_in, b_in, w_out, b_out, torch.relu, labels, k=e)
    moe.mlp_router = MLPRouter(moe.centroids())
    ks = [20, 40, 60, 80]

    def dense():
        return torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(x, w_in, b_in)), w_out, b_out)

    sel = {}
    with torch.inference_mode():
        ref = dense()
        for k in ks:
            sel[k] = topk_experts(moe.mlp_router(x), k)
            err = (moe.grouped_forward(x, sel[k]) - moe.masked_forward(x, sel[k])).abs().max().item()
            load = torch.bincount(sel[k].reshape(-1), minlength=e).float()
            print(
                f"K={k}: grouped kernel vs masked dense reference, max |diff| = {err:.2e}; "
                f"expert load max/mean = {(load.max() / load.mean()).item():.2f}"
            )
        full = moe.grouped_forward(x, torch.arange(e).expand(t, e).contiguous())
        print(f"K=E grouped kernel vs dense FFN, max |diff| = {(full - ref).abs().max().item():.2e}")
        for _ in range(3):  # warm-up (also allocates the kernel's buffers at their largest size)
            dense()
            for k in ks:
                moe.grouped_forward(x, sel[k])
        times = {
            "dense": [],
            "mlp": {k: [] for k in ks},
            "gt": {k: [] for k in ks},
            "experts": {k: [] for k in ks},
            "masked": {k: [] for k in ks},
        }
        for _ in range(a.repeats):  # interleaved, so that load changes hit all variants alike
            times["dense"] += _time(dense, 1)
            for k in ks:
                times["experts"][k] += _time(lambda k=k: moe.grouped_forward(x, sel[k]), 1)
                times["masked"][k] += _time(lambda k=k: moe.masked_forward(x, sel[k]), 1)
                times["mlp"][k] += _time(lambda k=k: topk_experts(moe.mlp_router(x), k), 1)
                times["gt"][k] += _time(lambda k=k: topk_experts(expert_scores(moe.hidden(x), e), k), 1)
    for label, stat in (("median", statistics.median), ("minimum", min)):
        dn = stat(times["dense"])
        print(
            f"\nd={d}, d_ff={d_ff}, E={e} experts of {d_ff // e}, {t} tokens, {a.threads} thread(s), "
            f"{label} of {a.repeats} interleaved repeats (ms)"
        )
        print(
            f"{'K':>4} {'dense':>8} {'experts':>8} {'mlp router':>11} {'total':>8} {'speed-up':>9} "
            f"{'ideal':>6} {'masked':>8} {'masked x':>9} {'gt router':>10}"
        )
        for k in ks:
            ex, ml, gt, ma = (stat(times[n][k]) for n in ("experts", "mlp", "gt", "masked"))
            print(
                f"{k:>4} {dn:8.2f} {ex:8.2f} {ml:11.2f} {ex + ml:8.2f} {dn / (ex + ml):8.2f}x "
                f"{e / k:5.2f}x {ma:8.2f} {dn / (ma + ml):8.2f}x {gt:10.2f}"
            )
    print(
        "\nspeed-up = dense / (experts + mlp router) with the grouped kernel; masked x = dense / (masked + "
        "mlp router), the dense product with unselected experts zeroed (what MoEFFN's kernel='auto' uses "
        "when K > E/2). The minimum is less sensitive to other processes on a shared machine."
    )


if __name__ == "__main__":
    main()
