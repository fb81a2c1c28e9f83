"""The stages' config classes, in one light module (no torch, scikit-learn or networkx): each knob is
declared here once, with its default, its rule and, where it shares a value, the key it follows
(pipeline/config/knobs.py). The schemas of the ``shrink`` and ``supernet`` groups are built from these
classes (pipeline/schema.py), so the pipeline, the tests and a Python caller read the same defaults,
and the runner receives these objects (``OmegaConf.to_object``). Each stage module names its own as ``Cfg``.

Plain (not frozen) dataclasses: Hydra merges overrides into a structured node, which a frozen one refuses;
keyword-only, so a caller never sets a knob by its place in the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config.knobs import Int, Number, OneOf, knob


@dataclass(kw_only=True)
class SampleCfg:
    """Knobs of the sample stage: uniform samples of the space (inside the current restriction after round 0)."""

    n_samples: int = knob(20, Int(1))  # uniform samples evaluated in round 0 (capped by the budget)
    samples_per_round: int = knob(0, Int(0))  # later rounds: new uniform samples inside the current restriction


@dataclass(kw_only=True)
class EvaluateCfg:
    """Knobs of the evaluate stage (set by the run's top-level ``progress``)."""

    progress: bool = True  # show a progress bar while evaluating


@dataclass(kw_only=True)
class ExploreCfg:
    """Knobs of the explore stage: which unevaluated archs near the pockets a later round evaluates."""

    acquisition: str = knob("ucb", OneOf(("ucb", "random")))  # ucb: surrogate-ranked; random: neighbours of seeds
    batch_size: int = knob(10, Int(1))  # acquisition=ucb: archs evaluated per round
    explore_pockets: int = knob(4, Int(1))  # acquisition=ucb: localities that share each round's evaluations
    seeds_per_pocket: int = knob(3, Int(1))  # acquisition=ucb: a locality's best archs whose neighbours are candidates
    mutation_fraction: float = knob(0.5, Number(0, 1, closed=True))  # acquisition=ucb: batch share for REA-style mutations
    kappa: float = knob(0.5, Number(0))  # acquisition=ucb: mean + kappa * spread of the surrogate
    seeds_per_round: int = knob(4, Int(1))  # acquisition=random: pocket members whose neighbourhoods are explored per round
    neighbors_per_seed: int = knob(6, Int(1))  # acquisition=random: unevaluated neighbours evaluated per seed
    fresh_samples: int = knob(0, Int(0))  # extra uniform samples per later round, keeping some global exploration
    radius: int = knob(2, Int(0), follows="pockets.radius")  # candidates lie within this many hops of a seed
    trees: int = knob(100, Int(1), follows="pockets.trees")  # surrogate ensemble size


@dataclass(kw_only=True)
class GraphCfg:
    """Knobs of the graph stage: the locality graph over the evaluated archs."""

    link_distance: int = knob(1, Int(1))  # archs at structural distance <= this are linked


@dataclass(kw_only=True)
class PocketsCfg:
    """Knobs of the pockets stage: pockets of good, structurally close archs, and the emitted region."""

    radius: int = knob(2, Int(0))  # a pocket holds good archs within this many graph hops of its seed
    region: str = knob("surrogate", OneOf(("surrogate", "members", "ball")))  # surrogate-filled, evaluated members, or ball
    target_size: int = knob(100, Int(1))  # region=surrogate: archs in the emitted space (evaluated + predicted)
    target_fraction: float = knob(0.0, Number(0, 1, closed=True))  # region=surrogate: > 0: this share of the space instead
    pool_per_seed: int = knob(2000, Int(1))  # region=surrogate: candidates per seed and hop level (a random subset beyond)
    trees: int = knob(100, Int(1))  # surrogate ensemble size
    optimism: float = knob(0.0, Number(0))  # region=surrogate: rank unevaluated archs by mean + this x tree spread
    good_quantile: float = knob(0.8, Number(0, 1))  # "good" = score >= this quantile of the round-0 uniform sample
    max_pockets: int = knob(8, Int(1))  # at most this many pockets per round
    min_pocket_size: int = knob(2, Int(1))  # a locality smaller than this is not (yet) a pocket


@dataclass(kw_only=True)
class SelectCfg:
    """Knobs of the select stage: keep some of the evaluated sample (baselines)."""

    size: int = knob(100, Int(1))  # archs kept: the method's emitted size, so comparisons are at one size
    rule: str = knob("top", OneOf(("top", "random")))  # top: the best by score; random: a uniform subset


@dataclass(kw_only=True)
class RefineCfg:
    """Knobs of the refine stage: restrict the space one step per round (baselines)."""

    target_size: int = knob(64, Int(1))  # stop refining once the restricted space is this small
    rule: str = knob("op_pruning", OneOf(("op_pruning", "regnet")))  # the method's own rule
    max_members: int = knob(200_000, Int(1))  # refuse to enumerate restricted spaces larger than this


@dataclass(kw_only=True)
class EmitCfg:
    """Knobs of the emit stage (filled by the runner, not by conf/shrink)."""

    provenance: dict[str, Any] = knob({})  # run id, seed, config, ...
    choose: str = knob("best", OneOf(("best", "last")))  # emit the round with the best mean pocket score, or the last


@dataclass(kw_only=True)
class SupernetCfg:
    """Knobs of the supernet stage: single-path one-shot training (the supernet group's ``train`` node)."""

    sample_from: str = knob("shrunk", OneOf(("shrunk", "full")))  # paths from the shrunk or the whole space
    epochs: int = knob(30, Int(1))
    batch_size: int = knob(64, Int(1))
    lr: float = knob(0.05, Number(0, strict=True))
    momentum: float = knob(0.9, Number(0, 1))
    weight_decay: float = knob(1e-4, Number(0))
    grad_clip: float = knob(5.0, Number(0, strict=True))  # gradient-norm clip of each step
    device: str = "auto"  # cuda when present (bf16 autocast, channels-last), else cpu
    bf16: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # channels-last tensors on CUDA (ignored on CPU)
    threads: Any = knob(1, Int(1, also=("auto",)))  # CPU threads (auto: every usable core); pipeline/threads.py says why 1


@dataclass(kw_only=True)
class SubnetSearchCfg:
    """Knobs of the search stage: rank subnets with the trained supernet and search the shrunk space."""

    eval_archs: int = knob(20, Int(1))  # archs ranked per set: shrunk-space members and as many uniform draws of the full space
    bn_batches: int = knob(4, Int(1))  # training batches that recalibrate each subnet's BN statistics before it is scored
    calib_batch: int = knob(64, Int(1), follows="train.batch_size")  # images per BN-recalibration batch
    population: int = knob(16, Int(1))  # evolutionary search inside the shrunk space
    generations: int = knob(4, Int(0))
    parents: int = knob(4, Int(1))
    mutation_prob: float = knob(0.3, Number(0, 1, closed=True))
    device: str = knob("auto", follows="train.device")
    threads: Any = knob(1, Int(1, also=("auto",)), follows="train.threads")  # CPU threads, as for training


@dataclass(kw_only=True)
class LatentCfg:
    """Knobs of the locality and the surrogate's features (``shrink.latent``), read by graph, explore and pockets."""

    locality: str = knob("space", OneOf(("space", "decisions", "edit", "latent")))  # space (its own distance) or latent
    features: str = knob("encoding", OneOf(("encoding", "latent", "both")))  # surrogate inputs
    latent_k: int = knob(5, Int(1))  # locality=latent: an evaluated arch links to its k nearest evaluated archs
    latent_steps: int = knob(3500, Int(1))  # encoder optimiser steps (cached per space and settings)
    latent_train: int = knob(20000, Int(1))  # the encoder trains on the whole space when at most this many archs, else a sample

    @property
    def needs_encoder(self) -> bool:
        """Tell whether the run needs the learned embedding at all."""
        return self.locality == "latent" or self.features != "encoding"
