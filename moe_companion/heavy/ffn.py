"""The one finder of a transformer's feed-forward (FFN / MLP) blocks.

Supported layouts (found by module name and checked by structure, so any model that follows them works):

=========  =================================================  ===========================  ====================
kind       block (``FFNBlock.path``, the module to patch)      gate / up / down              example models
=========  =================================================  ===========================  ====================
llama      ``layers.<i>`` holding ``mlp``                      ``gate_proj``, ``up_proj``,  Llama-2/3, Mistral,
                                                               ``down_proj``                Qwen, SmolLM2
bert       ``layer.<i>`` holding ``intermediate``, ``output``  --, ``intermediate.dense``,  BERT, MiniLM
                                                               ``output.dense``
t5         ``(encoder|decoder).block.<i>.layer.<j>`` holding   --, ``wi``, ``wo``           T5 (ReLU, t5-base)
           ``DenseReluDense``
t5-gated   as ``t5``                                           ``wi_0``, ``wi_1``, ``wo``   T5 v1.1, Flan-T5
=========  =================================================  ===========================  ====================

The FFN computes ``down(act(gate(x)) * up(x))`` when gated and ``down(act(up(x)))`` otherwise; ``up`` (and
``gate``) read the FFN input.  A block that MoEfication (:mod:`moe_companion.heavy.moefication`) has already
replaced holds its ``MoEFFN`` (``FFNBlock.moe``) and no linear layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import _validate as v

__all__ = ["KINDS", "STACKS", "FFNBlock", "find_ffns"]

#: Kinds of FFN block :func:`find_ffns` recognises.
KINDS = ("llama", "bert", "t5", "t5-gated")
#: Stacks of an encoder-decoder model (single-stack models have stack ``None``).
STACKS = ("encoder", "decoder")

_LLAMA = re.compile(r"(?:^|\.)layers\.(\d+)$")
_BERT = re.compile(r"(?:^|\.)layer\.(\d+)$")
_T5 = re.compile(r"(?:^|\.)(encoder|decoder)\.block\.(\d+)\.layer\.\d+$")


@dataclass(frozen=True)
class FFNBlock:
    """One FFN block of a model.

    Attributes
    ----------
    layer : int
        Layer index within its stack.
    stack : {"encoder", "decoder"} or None
        The stack of an encoder-decoder (T5) model; ``None`` for single-stack models.
    path : str
        Module path of ``parent`` in the model (the key of MoEfication's expert labels).
    kind : {"llama", "bert", "t5", "t5-gated"}
    parent : torch.nn.Module
        The module whose attributes hold the FFN (``mlp``; ``intermediate`` and ``output``;
        ``DenseReluDense``): the one to patch.
    gate, up, down : torch.nn.Linear or None
        The linear layers; ``gate`` is ``None`` unless the FFN is gated, all three are ``None`` once
        MoEfied.
    activation : callable
        The elementwise activation.
    moe : MoEFFN or None
        The MoEfied FFN that replaced the block's linear layers, ``None`` for a dense block.
    """

    layer: int
    stack: str | None
    path: str
    kind: str
    parent: object
    gate: object
    up: object
    down: object
    activation: object
    moe: object = None

    @property
    def moefied(self) -> bool:
        """Whether MoEfication has already replaced this FFN."""
        return self.moe is not None

    def input_module(self, projection: str = "up_proj"):
        """The linear module whose input is the FFN input: ``up`` (``"up_proj"``) or ``gate`` (``"gate_proj"``).

        Both read the same tensor.  Raises ``ValueError`` naming ``projection`` for ``"gate_proj"`` on a
        non-gated FFN (BERT, ReLU T5) and for a MoEfied block (no linear layers left).
        """
        v.check_choice(projection, "projection", ("up_proj", "gate_proj"))
        if self.moefied:
            raise ValueError(f"projection {projection!r} names no linear layer: the FFN at {self.path!r} is MoEfied")
        module = self.up if projection == "up_proj" else self.gate
        if module is None:
            raise ValueError(
                f"projection must be 'up_proj' for the {self.kind} FFN at {self.path!r} (no gate), got {projection!r}"
            )
        return module


def _t5_block(path, mod, m, moe_cls, model) -> FFNBlock:
    """The block of the T5LayerFF ``mod`` at ``path`` (``m``: its match of the T5 path pattern)."""
    ffn = mod.DenseReluDense
    stack, layer = m.group(1), int(m.group(2))
    if isinstance(ffn, moe_cls):
        return FFNBlock(layer, stack, path, "t5", mod, None, None, None, ffn.activation, ffn)
    if all(hasattr(ffn, a) for a in ("wi_0", "wi_1", "wo")):
        return FFNBlock(layer, stack, path, "t5-gated", mod, ffn.wi_0, ffn.wi_1, ffn.wo, ffn.act)
    if hasattr(ffn, "wi") and hasattr(ffn, "wo"):
        return FFNBlock(layer, stack, path, "t5", mod, None, ffn.wi, ffn.wo, ffn.act)
    raise ValueError(f"model {type(model).__name__} has an unsupported T5 FFN at {path!r} ({type(ffn).__name__})")


def find_ffns(model, *, stack: str | None = None) -> list[FFNBlock]:
    """The FFN blocks of ``model``, in layer order (the encoder's before the decoder's).

    Parameters
    ----------
    model : torch.nn.Module
        A transformers model (or any module with the names of the module docstring's table).
    stack : {"encoder", "decoder"}, optional
        For an encoder-decoder model, keep only that stack's blocks; the blocks of a single-stack model
        (stack ``None``) are kept whatever ``stack`` says.

    Returns
    -------
    list of FFNBlock

    Raises
    ------
    ValueError
        Naming the model type if it has no supported FFN layout, naming ``stack`` if the model has no
        block in that stack.
    """
    from ._moe_layers import MoEFFN

    if stack is not None:
        v.check_choice(stack, "stack", STACKS)
    found = []
    for path, mod in model.named_modules():
        mlp = getattr(mod, "mlp", None)
        if getattr(mod, "DenseReluDense", None) is not None and (m := _T5.search(path)):
            found.append(_t5_block(path, mod, m, MoEFFN, model))
        elif (
            mlp is not None
            and (m := _LLAMA.search(path))
            and all(hasattr(mlp, a) for a in ("gate_proj", "up_proj", "down_proj"))
        ):
            found.append(
                FFNBlock(
                    int(m.group(1)), None, path, "llama", mod, mlp.gate_proj, mlp.up_proj, mlp.down_proj, mlp.act_fn
                )
            )
        elif (m := _BERT.search(path)) and hasattr(mod, "intermediate") and hasattr(mod, "output"):
            inter, layer = mod.intermediate, int(m.group(1))
            if isinstance(inter, MoEFFN):
                found.append(FFNBlock(layer, None, path, "bert", mod, None, None, None, inter.activation, inter))
            elif hasattr(inter, "dense") and hasattr(inter, "intermediate_act_fn"):
                act = inter.intermediate_act_fn
                found.append(FFNBlock(layer, None, path, "bert", mod, None, inter.dense, mod.output.dense, act))
    if not found:
        raise ValueError(
            f"model {type(model).__name__} has no supported FFN layout (Llama layers.<i>.mlp with gate/up/down_proj, "
            "BERT layer.<i>.intermediate/output, T5 block.<i>.layer.<j>.DenseReluDense)"
        )
    found.sort(key=lambda b: (STACKS.index(b.stack) if b.stack else 0, b.layer))
    if stack is None:
        return found
    kept = [b for b in found if b.stack in (None, stack)]
    if not kept:
        stacks = sorted({b.stack for b in found}, key=STACKS.index)
        raise ValueError(f"stack must be one of the model's stacks {stacks}, got {stack!r}")
    return kept
