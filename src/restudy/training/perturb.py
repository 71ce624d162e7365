"""The one-bit change: move one weight of a freshly initialised model by one ULP.

Re-implemented from Summers & Dinneen's "random bit change" instability test (ICML 2021,
arXiv:2103.04514; their code's ``train.py``): with every other source of randomness fixed, exactly
one scalar of one weight tensor is moved up or down (probability ½ each) to the next representable
float, the smallest possible change (usually a flip of the lowest mantissa bit). The original draws
the index with ``torch.randint`` after seeding the global RNG and restores the global state
afterwards; here the draws come from a private generator (the run's ``perturb`` seed stream), so the
global RNG is never touched.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import RestudyError

__all__ = ["one_ulp_change", "select_parameter", "bits"]

_INT_OF_SIZE = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def select_parameter(model: torch.nn.Module, param: str = "first") -> tuple[str, torch.nn.Parameter]:
    """The parameter a one-bit change targets.

    Args:
        model: the model.
        param: ``"first"``: the first parameter, in ``model.named_parameters()`` order, whose name
            ends with ``"weight"`` (the stem conv ``conv1.weight`` of the paper's ResNet-14, as
            the original ``train.py`` picks it); otherwise an exact parameter name (the original's
            option codes 2–5 target ``fc.weight``, ``fc.bias``, ... the same way).

    Returns:
        ``(name, parameter)``.

    Raises:
        RestudyError: no such parameter, or it is empty or not floating point.
    """
    named = dict(model.named_parameters())
    if param == "first":
        name = next((n for n in named if n.endswith("weight")), None)
        if name is None:
            raise RestudyError(
                "the model has no parameter whose name ends with 'weight'",
                where="perturb.param",
                got=param,
                allowed=list(named),
            )
    elif param in named:
        name = param
    else:
        raise RestudyError("unknown parameter", where="perturb.param", got=param, allowed=["first", *named])
    p = named[name]
    if p.numel() == 0 or not p.is_floating_point():
        raise RestudyError(
            "the parameter must be a non-empty floating-point tensor",
            where="perturb.param",
            got=(name, str(p.dtype), tuple(p.shape)),
        )
    return name, p


def bits(value: torch.Tensor) -> str:
    """The bit pattern of a 0-d float tensor, as hex (``0x3e800000`` for float32 0.25)."""
    size = value.element_size()
    raw = int(value.detach().cpu().reshape(1).view(_INT_OF_SIZE[size]).item())
    return f"0x{raw & ((1 << (8 * size)) - 1):0{2 * size}x}"


@torch.no_grad()
def one_ulp_change(model: torch.nn.Module, generator: torch.Generator, param: str = "first") -> dict[str, Any]:
    """Move one scalar of one weight tensor by one ULP, in place (Summers & Dinneen's ``train.py``).

    Draws, from ``generator`` only: the flat index (``torch.randint`` over the tensor's elements,
    uniform), then the direction (up if a uniform draw is < ½, else down). The value becomes
    ``torch.nextafter(old, ±inf)``: the adjacent float of the parameter's dtype (float32 for the
    models here). Moving a ±0 down/up crosses the sign: the new value is the smallest subnormal of
    the other sign, still one step away in float order (though not in raw sign-magnitude bits).

    Args:
        model: the freshly initialised model (call before the optimizer is built).
        generator: a CPU generator seeded with the run's ``perturb`` seed.
        param: which parameter, see :func:`select_parameter`.

    Returns:
        ``{"param", "index" (flat), "index_nd" (unravelled, list), "shape", "direction"
        ("up"/"down"), "old", "new" (Python floats), "old_bits", "new_bits" (hex), "dtype"}``.
    """
    name, p = select_parameter(model, param)
    flat_index = int(torch.randint(0, p.numel(), (1,), generator=generator).item())
    up = bool(torch.rand(1, generator=generator).item() < 0.5)
    # Index in logical (row-major) order, whatever the memory layout (e.g. channels_last).
    index_nd = [int(i) for i in torch.unravel_index(torch.tensor(flat_index), tuple(p.shape))]
    old = p[tuple(index_nd)].clone()
    target = torch.tensor(float("inf") if up else float("-inf"), dtype=p.dtype, device=p.device)
    new = torch.nextafter(old, target)
    p[tuple(index_nd)] = new
    return {
        "param": name,
        "index": flat_index,
        "index_nd": index_nd,
        "shape": list(p.shape),
        "direction": "up" if up else "down",
        "old": float(old.item()),
        "new": float(new.item()),
        "old_bits": bits(old),
        "new_bits": bits(new),
        "dtype": str(p.dtype).replace("torch.", ""),
    }
