"""Zero-cost proxies as evaluators: score an untrained network from a few real batches.

Definitions (higher = predicted better for all of them):

- ``zico`` (Li et al., ICLR 2023): over B >= 2 batches, per weight element the mean absolute
  gradient over its standard deviation across batches; per layer (conv/linear weight) the log
  of the sum of these ratios over elements with non-zero deviation; summed over layers.
- ``synflow`` (Tanaka et al., 2020; as a NAS proxy: Abdelfattah et al., 2021): with every
  parameter replaced by its absolute value, batch norm in eval mode and an all-ones input in
  double precision, R = sum of the outputs; score = sum over conv/linear weights of |w * dR/dw|.
  Data-free.
- ``naswot`` (Mellor et al., 2021): binary codes of every ReLU's positive units for a batch; the
  kernel K = C C^T + (1-C)(1-C)^T counts agreeing units; score = log|det K|.
- ``snip`` (Lee et al., 2019): sum over conv/linear weights of |w * dL/dw| on one batch.
- ``grad_norm``: sum over conv/linear weights of the L2 norm of dL/dw on one batch.
- ``params``: parameter count; ``flops``: torch.utils.flop_counter FLOPs at batch 1.

L is the cross-entropy of the network on real labelled batches of the configured dataset.
Networks are initialised from a per-architecture seed, batches drawn from the train split with
the run seed, so scores are deterministic. A proxy that comes out NaN or infinite (e.g. NASWOT of
a cell whose output ignores its input) is returned as is; the evaluate stage records it as the
worst score with a warning, never as a good one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from pipeline.datasets import Dataset
from pipeline.evaluators.base import Evaluator, EvaluatorError
from pipeline.evaluators.train import arch_seed, pick_device
from spaces.base import Arch, SearchSpace
from spaces.costs import count_flops, count_params

Batch = tuple[torch.Tensor, torch.Tensor]


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """Return the conv and linear layers, whose weights every gradient proxy sums over."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _loss_grads(model: nn.Module, batch: Batch) -> None:
    """Fill .grad with the cross-entropy gradient on one batch (train-mode batch norm)."""
    model.train()
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()


def zico(model: nn.Module, batches: Sequence[Batch]) -> float:
    """Return ZiCo over ``batches`` (at least two)."""
    if len(batches) < 2:
        raise EvaluatorError("zico needs at least 2 batches (evaluator.batches >= 2)")
    layers = weight_layers(model)
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    for batch in batches:
        _loss_grads(model, batch)
        for store, layer in zip(grads, layers, strict=True):
            if layer.weight.grad is not None:
                store.append(layer.weight.grad.detach().flatten().clone())
    score = 0.0
    for store in grads:
        if len(store) < 2:
            continue
        stacked = torch.stack(store)
        std, mean_abs = stacked.std(0), stacked.abs().mean(0)
        keep = std > 0
        total = float((mean_abs[keep] / std[keep]).sum())
        if total > 0:
            score += math.log(total)
    return score


@torch.no_grad()
def _signs_to_abs(model: nn.Module) -> dict[str, torch.Tensor]:
    """Replace every parameter by its absolute value; return the signs to restore."""
    signs = {}
    for name, param in model.state_dict().items():
        if param.is_floating_point():
            signs[name] = torch.sign(param)
            param.abs_()
    return signs


def synflow(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Return SynFlow of ``model`` (data-free; the model's dtype and signs are restored)."""
    dtype = next(model.parameters()).dtype
    signs = _signs_to_abs(model)
    model.double().eval()
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    model(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum().backward()
    score = sum(float((layer.weight.detach() * layer.weight.grad).abs().sum()) for layer in weight_layers(model)
                if layer.weight.grad is not None)
    with torch.no_grad():
        for name, param in model.state_dict().items():
            if name in signs:
                param.mul_(signs[name])
    model.to(dtype)
    return score


def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """Return NASWOT: log|det| of the ReLU binary-code agreement kernel over the batch."""
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1).double()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    if not codes:
        return float("nan")
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1.0 - c) @ (1.0 - c).T
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0 else float("-inf")


def snip(model: nn.Module, batch: Batch) -> float:
    """Return SNIP saliency summed over conv/linear weights."""
    _loss_grads(model, batch)
    return sum(float((layer.weight.detach() * layer.weight.grad).abs().sum()) for layer in weight_layers(model)
               if layer.weight.grad is not None)


def grad_norm(model: nn.Module, batch: Batch) -> float:
    """Return the sum of per-layer gradient L2 norms."""
    _loss_grads(model, batch)
    return sum(float(layer.weight.grad.norm()) for layer in weight_layers(model) if layer.weight.grad is not None)


PROXIES = ("zico", "synflow", "naswot", "snip", "grad_norm", "params", "flops")


class ProxyEvaluator(Evaluator):
    """Score architectures with one zero-cost proxy (``proxy``) on real batches of ``dataset``."""

    name = "proxy"

    def __init__(self, space: SearchSpace, dataset: Dataset, proxy: str = "zico", seed: int = 0,
                 batch_size: int = 64, batches: int = 2, device: str = "auto") -> None:
        super().__init__(space)
        if proxy not in PROXIES:
            raise EvaluatorError(f"evaluator.proxy={proxy!r} is not one of {', '.join(PROXIES)}")
        self.proxy, self.metric, self.name = proxy, proxy, proxy
        self.dataset, self.seed, self.batch_size, self.n_batches = dataset, seed, batch_size, batches
        self.device = pick_device(device)
        self._batches: list[Batch] | None = None

    def batches(self) -> list[Batch]:
        """Return the fixed batches (drawn once from the train split with the run seed)."""
        if self._batches is None:
            train = self.dataset.splits.train
            order = torch.randperm(len(train.y), generator=torch.Generator().manual_seed(self.seed))
            picks = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(self.n_batches)]
            self._batches = [(train.x[p].to(self.device), train.y[p].to(self.device)) for p in picks]
        return self._batches

    def model(self, arch: Arch) -> nn.Module:
        """Build the arch's network with its seeded initialisation."""
        splits = self.dataset.splits
        torch.manual_seed(arch_seed(self.seed, self.space.to_str(arch)))
        return self.space.build_model(arch, splits.input_shape, splits.num_classes).to(self.device)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """Return the proxy (as ``metric``), params, FLOPs and the seconds the proxy took."""
        model = self.model(arch)
        start = time.perf_counter()
        value = self.compute(self.proxy, model)
        seconds = time.perf_counter() - start
        return {self.proxy: value, **self.costs(arch), "proxy_seconds": seconds}

    def compute(self, proxy: str, model: nn.Module) -> float:
        """Compute one proxy on a fresh model."""
        batches = self.batches()
        functions: dict[str, Callable[[], float]] = {
            "zico": lambda: zico(model, batches),
            "synflow": lambda: synflow(model, self.dataset.splits.input_shape),
            "naswot": lambda: naswot(model, batches[0][0]),
            "snip": lambda: snip(model, batches[0]),
            "grad_norm": lambda: grad_norm(model, batches[0]),
            "params": lambda: float(count_params(model)),
            "flops": lambda: float(count_flops(model, self.dataset.splits.input_shape)),  # torch's counter
        }
        return float(functions[proxy]())

    def tags(self) -> dict[str, str]:
        """Return proxy and dataset names."""
        return {**super().tags(), "dataset": self.dataset.name}


class EnsembleEvaluator(ProxyEvaluator):
    """Rank-average of several proxies: each proxy's percentile among a fixed reference sample.

    Ranks need a population; a fixed uniform reference sample of ``reference_size`` archs (drawn
    with the seed) gives every arch a percentile per proxy in [0, 1] without depending on which
    other archs a run happens to evaluate. A non-finite proxy value ranks 0 (worst).
    """

    def __init__(self, space: SearchSpace, dataset: Dataset, proxies: Sequence[str] = ("zico", "synflow", "naswot"),
                 reference_size: int = 32, seed: int = 0, batch_size: int = 64, batches: int = 2,
                 device: str = "auto") -> None:
        super().__init__(space, dataset, "zico", seed, batch_size, batches, device)
        bad = [p for p in proxies if p not in PROXIES]
        if bad or not proxies:
            raise EvaluatorError(f"evaluator.proxies={list(proxies)} must be a non-empty subset of {', '.join(PROXIES)}")
        self.proxies, self.metric, self.name = tuple(proxies), "ensemble", "ensemble"
        rng = np.random.default_rng(seed)
        self.reference = space.sample_unique(reference_size, rng)
        self._ref_values: dict[str, np.ndarray] | None = None

    def reference_values(self) -> dict[str, np.ndarray]:
        """Return each proxy's values on the reference sample (computed once)."""
        if self._ref_values is None:
            values = {p: [] for p in self.proxies}
            for arch in self.reference:
                for proxy in self.proxies:
                    values[proxy].append(self.compute(proxy, self.model(arch)))
            self._ref_values = {p: np.nan_to_num(np.asarray(v, dtype=float), nan=-np.inf) for p, v in values.items()}
        return self._ref_values

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """Return the mean percentile over proxies, plus each proxy's raw value."""
        reference = self.reference_values()
        raw = {p: self.compute(p, self.model(arch)) for p in self.proxies}
        ranks = [percentile(raw[p], reference[p]) for p in self.proxies]
        return {"ensemble": float(np.mean(ranks)), **raw, **self.costs(arch)}


def percentile(value: float, reference: np.ndarray) -> float:
    """Return the share of ``reference`` below ``value`` (ties count half); 0 for non-finite values."""
    if not math.isfinite(value):
        return 0.0
    return float((np.sum(reference < value) + 0.5 * np.sum(reference == value)) / len(reference))
