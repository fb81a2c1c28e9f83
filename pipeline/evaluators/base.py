"""The evaluator contract: architecture in, metrics out (one of them is the search score)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from pipeline.errors import EvaluatorError
from spaces.base import Arch, SearchSpace


class Evaluator(ABC):
    """Scores architectures of one space; ``metric`` names the result key that search maximises."""

    name: str = "evaluator"
    metric: str = "val_acc"
    # Capabilities the runner asks for instead of testing a class (a new evaluator declares its own):
    reads_table: bool = False  # scores are lookups in ``self.table`` (arch -> row; ``columns``, ``devices()``):
    #   the table is the ground truth and holds the costs; there are no images, so no supernet
    trains_on_images: bool = False  # scores come from training networks on ``self.dataset`` (pipeline.bench needs it)
    latency: tuple[str, object] | None = None  # (device, the space's latency table measured there), for budgets

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    @abstractmethod
    def evaluate(self, arch: Arch) -> dict[str, float]:
        """Return the metrics of ``arch``; the dict holds ``self.metric``."""

    def costs(self, arch: Arch) -> dict[str, float]:
        """Return the arch's ``params``, ``flops`` (and measured latency) without evaluating it (for budgets).

        By default from the network built for the evaluator's dataset; table lookups override it.
        """
        dataset = getattr(self, "dataset", None)
        if dataset is None:
            raise EvaluatorError(f"evaluator {self.name!r} cannot tell costs; resource constraints need one that can")
        splits = dataset.splits
        params, flops = self.space.costs(arch, splits.input_shape, splits.num_classes)
        out = {"params": float(params), "flops": float(flops)}
        if self.latency is not None:  # predicted from per-block times measured on the device (spaces' latency hook)
            device, table = self.latency
            out[f"latency_{device}"] = float(self.space.latency(arch, splits.input_shape, table))
        return out

    @property
    def parallel(self) -> bool:
        """Whether worker processes speed this evaluator up (torch on the CPU; not lookups, not CUDA)."""
        device = getattr(self, "device", None)
        return device is not None and getattr(device, "type", None) == "cpu"

    def tags(self) -> dict[str, str]:
        """Return what identifies this evaluator in run metadata."""
        return {"evaluator": self.name, "metric": self.metric}
