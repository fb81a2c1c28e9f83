"""A performance surrogate with uncertainty: a randomised-tree ensemble over the space's encodings.

The locality method asks two questions of it: which unevaluated neighbour of a good arch is
worth an evaluation (mean + kappa * spread, an upper confidence bound) and which unevaluated
archs near a pocket seed belong in the emitted space (mean). Extremely randomised trees
(scikit-learn) fit a few hundred one-hot rows in tens of milliseconds, need no feature scaling,
and the spread of the per-tree predictions is a usable uncertainty (as in SMAC's random forest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from spaces.base import SearchSpace


@dataclass(frozen=True)
class SurrogateCfg:
    """Knobs of the surrogate."""

    trees: int = 100  # ensemble members; their spread is the uncertainty
    max_features: float = 0.5  # share of encoding columns tried per split


class Surrogate:
    """Mean and spread of a tree ensemble fitted on (arch string, score) pairs."""

    def __init__(self, space: SearchSpace, cfg: SurrogateCfg = SurrogateCfg(), seed: int = 0,
                 features: Callable[[Sequence[str]], np.ndarray] | None = None, mode: str = "encoding") -> None:
        self.space, self.cfg, self.seed = space, cfg, seed
        self.features, self.mode = features, mode  # mode: encoding, latent (features only) or both
        self._codes: dict[str, np.ndarray] = {}
        self._model = None

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        """Return the (N, F) encoding matrix of arch strings (cached per string)."""
        new = [a for a in dict.fromkeys(archs) if a not in self._codes]
        if new:
            parts = []
            if self.mode != "latent":
                parts.append(np.stack([np.asarray(self.space.encode(self.space.from_str(a)), np.float32) for a in new]))
            if self.mode != "encoding" and self.features is not None:
                parts.append(np.asarray(self.features(new), np.float32))
            self._codes.update(zip(new, np.concatenate(parts, axis=1), strict=True))
        return np.stack([self._codes[a] for a in archs]) if archs else np.zeros((0, 0), np.float32)

    def fit(self, archs: Sequence[str], scores: Sequence[float]) -> Surrogate:
        """Fit on the finite scores among ``scores`` (failed or over-budget archs are skipped)."""
        from sklearn.ensemble import ExtraTreesRegressor

        keep = [i for i, s in enumerate(scores) if np.isfinite(s)]
        if len(keep) < 2:
            raise ValueError(f"the surrogate needs at least 2 finite scores, got {len(keep)}")
        X = self.encode([archs[i] for i in keep])
        y = np.asarray([scores[i] for i in keep], dtype=float)
        self._model = ExtraTreesRegressor(n_estimators=self.cfg.trees, max_features=self.cfg.max_features,
                                          random_state=self.seed, n_jobs=1).fit(X, y)
        return self

    def predict(self, archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the ensemble mean and spread (std over trees) for each arch."""
        if self._model is None:
            raise RuntimeError("Surrogate.predict called before fit")
        if not archs:
            return np.zeros(0), np.zeros(0)
        X = self.encode(archs)
        per_tree = np.stack([tree.predict(X) for tree in self._model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)
