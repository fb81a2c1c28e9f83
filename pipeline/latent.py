"""The learned locality: ``shrink.latent.locality=latent`` and ``shrink.latent.features=latent|both``.

With ``locality=latent`` the method's notion of "structurally close" comes from the arch2vec-style
embedding (``pipeline/embedding.py``) instead of the space's own distance (decision Hamming,
NB101 graph edit distance): the graph stage links each evaluated arch to its ``latent_k`` nearest
evaluated archs, exploration proposes the nearest unevaluated archs in latent space (as many as
the arch has single-change neighbours), and pocket filling rates the archs nearest to each seed.
Candidates are the whole space when it is enumerable (at most ``latent_train`` archs: every arch
is embedded once), else the seed's two-change neighbourhood (bounded), re-ranked by latent
distance: the nearest *valid* archs, never a decoded string that may not exist.
With ``features=latent`` (or ``both``) the surrogate reads the embedding (or the embedding next
to the space's encoding).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.config.stages import LatentCfg
from pipeline.embedding import EmbeddingCfg, GraphVAE, cache_key, cached_encoder, embed
from pipeline.errors import ConfigError
from spaces.base import CategoricalSpace, SearchSpace

Cfg = LatentCfg  # declared in pipeline/config/stages.py (light: read before composing)


def check(space: SearchSpace, cfg: Cfg) -> None:
    """Refuse a locality or feature setting the space cannot honour, before any evaluation (the choices are LatentCfg's)."""
    categorical = isinstance(space, CategoricalSpace)
    if cfg.locality == "decisions" and not categorical:
        raise ConfigError(f"shrink.latent.locality=decisions needs a space of decisions; {space.name} uses "
                          "shrink.latent.locality=edit")
    if cfg.locality == "edit" and categorical:
        raise ConfigError(f"shrink.latent.locality=edit is NB101's graph edit distance; {space.name} uses "
                          "shrink.latent.locality=decisions")
    if cfg.needs_encoder and not hasattr(space, "graphs"):
        raise ConfigError(f"shrink.latent.locality=latent needs a graph view of {space.name} (space.graphs); it has none")


class Latent:
    """Embeddings of arch strings (cached) and the nearest-neighbour queries the stages ask."""

    def __init__(self, space: SearchSpace, model: GraphVAE, cfg: Cfg, universe: list[str] | None) -> None:
        self.space, self.model, self.cfg = space, model, cfg
        self.locality = "latent" if cfg.locality == "latent" else "space"
        self._vectors: dict[str, np.ndarray] = {}
        self.universe = universe
        self._universe_z = self.vectors(universe) if universe else None

    def vectors(self, archs: Sequence[str]) -> np.ndarray:
        """Return the embedding ``[N, latent]`` of arch strings."""
        new = [a for a in dict.fromkeys(archs) if a not in self._vectors]
        if new:
            z = embed(self.model, self.space, [self.space.from_str(a) for a in new])
            self._vectors.update(zip(new, z, strict=True))
        return np.stack([self._vectors[a] for a in archs]) if archs else np.zeros((0, self.model.mu.out_features))

    def features(self) -> Callable[[Sequence[str]], np.ndarray] | None:
        """Return what the surrogate reads besides (or instead of) the encoding; None = encoding only."""
        return None if self.cfg.features == "encoding" else self.vectors

    def knn_pairs(self, archs: Sequence[str], k: int) -> np.ndarray:
        """Return the index pairs (i < j) linking every arch to its ``k`` nearest others, in bulk."""
        if len(archs) < 2:
            return np.zeros((0, 2), np.int64)
        from sklearn.neighbors import NearestNeighbors

        z = self.vectors(archs)
        found = NearestNeighbors(n_neighbors=min(k + 1, len(archs))).fit(z).kneighbors(z, return_distance=False)
        rows = np.repeat(np.arange(len(archs)), found.shape[1])
        pairs = np.sort(np.stack([rows, found.ravel()], axis=1), axis=1)
        return np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)

    def nearest(self, seed: str, n: int, exclude: set[str], feasible: Callable[[str], bool],
                rng: np.random.Generator) -> list[str]:
        """Return the ``n`` valid archs nearest to ``seed`` in latent space, skipping ``exclude`` and infeasible ones."""
        ranked = self.ranked(seed, rng)
        return list(itertools.islice((a for a in ranked if a != seed and a not in exclude and feasible(a)), n))

    def ranked(self, seed: str, rng: np.random.Generator) -> list[str]:
        """Return candidate archs by latent distance from ``seed``: the whole space, or its 2-change neighbourhood."""
        if self._universe_z is not None:
            candidates, z = self.universe, self._universe_z
        else:
            from pipeline.stages.pockets import neighbourhood  # here: the pockets stage imports this module

            candidates = list(neighbourhood(self.space, seed, 2, 2000, rng, lambda a: True))
            z = self.vectors(candidates)
        distance = np.linalg.norm(z - self.vectors([seed])[0], axis=1)
        return [candidates[i] for i in np.lexsort((np.arange(len(candidates)), distance))]


def enumerable(space: SearchSpace, limit: int) -> list[str] | None:
    """Return every arch string of a categorical space of at most ``limit`` archs, else None."""
    if not isinstance(space, CategoricalSpace) or space.size() > limit:
        return None
    return [space.to_str(space.validate(tuple(a))) for a in itertools.product(*space.options)]


def build(space: SearchSpace, cfg: Cfg, cache_dir: Path) -> tuple[Latent | None, Path | None]:
    """Return the run's Latent (None when unused) and the cached encoder file it came from.

    The encoder reads no score and uses a fixed seed, so every run and seed on one space shares it.
    """
    check(space, cfg)
    if not cfg.needs_encoder:
        return None, None
    enc = EmbeddingCfg(steps=cfg.latent_steps, max_train=cfg.latent_train)
    model = cached_encoder(space, enc, cache_dir, progress=True)
    return Latent(space, model, cfg, enumerable(space, cfg.latent_train)), Path(cache_dir) / f"{cache_key(space, enc)}.pt"
