"""Parameter and FLOP counts of torch models (torch's own FLOP counter, no hand-written rules)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: torch.nn.Module) -> int:
    """Return the number of parameters."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Return torch's FLOP count of one forward pass at batch size 1 (the model is left in eval mode)."""
    device = next(model.parameters(), torch.zeros(0)).device
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    return int(counter.get_total_flops())
