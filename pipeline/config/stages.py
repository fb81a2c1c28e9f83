"""The stages' config dataclasses, in one light module (no torch, scikit-learn or networkx), so the CLI can
type a method's config from them before anything heavy loads (pipeline/schema.py). Each stage module
names its own as ``Cfg``. Defaults here equal those of ``conf/stage/<stage>.yaml``
(tests/pipeline/test_schema.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class SampleCfg:
    """Knobs of the sample stage."""

    n_samples: int  # uniform samples evaluated in round 0 (capped by the budget)
    samples_per_round: int = 0  # later rounds: new uniform samples inside the current restriction


@dataclass(frozen=True)
class EvaluateCfg:
    """Knobs of the evaluate stage."""

    progress: bool = True  # show a progress bar while evaluating


@dataclass(frozen=True)
class ExploreCfg:
    """Knobs of the explore stage."""

    seeds_per_round: int  # archs whose neighbourhoods are candidates this round
    neighbors_per_seed: int  # acquisition=random: unevaluated neighbours evaluated per seed
    fresh_samples: int  # extra uniform samples per round, keeping some global exploration
    acquisition: str = "ucb"  # ucb: surrogate-ranked neighbours; random: random neighbours per pocket seed
    batch_size: int = 10  # acquisition=ucb: archs proposed per round
    explore_pockets: int = 4  # acquisition=ucb: localities sharing the batch
    seeds_per_pocket: int = 3  # acquisition=ucb: a pocket's best archs whose neighbours are candidates
    radius: int = 2  # acquisition=ucb: an arch within this distance of a pocket seed joins that pocket
    mutation_fraction: float = 0.5  # acquisition=ucb: share of the batch spent on REA-style mutations instead
    kappa: float = 0.5  # acquisition=ucb: weight of the surrogate's spread (exploration)
    trees: int = 100  # surrogate ensemble size


@dataclass(frozen=True)
class GraphCfg:
    """Knobs of the graph stage."""

    link_distance: int  # archs at structural distance <= this are linked


@dataclass(frozen=True)
class PocketsCfg:
    """Knobs of the pockets stage."""

    radius: int  # a pocket holds good archs within this many graph hops of its seed
    good_quantile: float  # "good" = score >= this quantile of the round-0 uniform sample
    max_pockets: int  # at most this many pockets per round
    min_pocket_size: int  # a locality smaller than this is not (yet) a pocket
    region: str = "surrogate"  # emitted pocket: surrogate-filled neighbourhood, its evaluated members, or a whole ball
    target_size: int = 100  # region=surrogate: archs in the emitted space (evaluated + predicted)
    target_fraction: float = 0.0  # region=surrogate: if > 0, the size is this share of the space instead
    pool_per_seed: int = 2000  # region=surrogate: candidate archs per seed and hop level (a random subset beyond)
    trees: int = 100  # region=surrogate: surrogate ensemble size


@dataclass(frozen=True)
class SelectCfg:
    """Knobs of the select stage."""

    size: int  # archs kept in the shrunk space
    rule: str  # "random" (uniform subset) or "top" (best by score)


@dataclass(frozen=True)
class RefineCfg:
    """Knobs of the refine stage."""

    rule: str  # "op_pruning" or "regnet"
    target_size: int  # stop refining once the restricted space is this small
    max_members: int = 200_000  # refuse to enumerate restricted spaces larger than this


@dataclass(frozen=True)
class EmitCfg:
    """Knobs of the emit stage (filled by the runner, not by conf/shrink)."""

    provenance: dict[str, Any] = field(default_factory=dict)  # run id, seed, config, ...
    choose: str = "best"  # emit the round with the best mean pocket score, or the "last" round


@dataclass(frozen=True)
class SupernetCfg:
    """Knobs of the supernet stage."""

    sample_from: str  # "shrunk" or "full"
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    device: str = "auto"
    bf16: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True  # channels-last tensors on CUDA
    threads: int | str = 1  # CPU threads (auto: every usable core); pipeline/threads.py says why 1

    def __post_init__(self) -> None:
        """Refuse settings that could only fail after the whole budget is spent."""
        if self.sample_from not in ("shrunk", "full"):
            raise ConfigError(f"supernet.train.sample_from={self.sample_from!r} is not one of shrunk, full")
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"supernet.train.{key}={value!r} must be an integer >= 1")


@dataclass(frozen=True)
class SubnetSearchCfg:
    """Knobs of the search stage."""

    eval_archs: int  # archs ranked per set (shrunk members, uniform draws of the full space)
    bn_batches: int  # training batches that recalibrate each subnet's BN statistics
    population: int
    generations: int
    parents: int
    mutation_prob: float
    calib_batch: int = 256  # images per BN-recalibration batch
    device: str = "auto"
    threads: int | str = 1  # CPU threads (auto: every usable core), as for supernet training


@dataclass(frozen=True)
class LatentCfg:
    """Knobs of the locality and the surrogate's features (shrink.*)."""

    locality: str = "space"  # space (= decisions / edit: the space's own distance) or latent (learned embedding)
    features: str = "encoding"  # surrogate inputs: the space's encoding, the latent embedding, or both
    latent_k: int = 5  # locality=latent: an evaluated arch links to its k nearest evaluated archs
    latent_steps: int = 3500  # encoder optimiser steps (pipeline/embedding.py)
    latent_train: int = 20000  # archs the encoder trains on: the whole space when at most this many, else a sample

    @property
    def needs_encoder(self) -> bool:
        """Tell whether the run needs the learned embedding at all."""
        return self.locality == "latent" or self.features != "encoding"
