"""An EPNAS-style searcher: a REINFORCE policy over the decisions, guided by a performance predictor.

After EPNAS (Efficient Progressive NAS): a factorised policy (one softmax per decision, starting
uniform) proposes a pool of ``pool`` distinct, unevaluated archs inside the domain; a predictor
(the project's tree-ensemble surrogate, refitted on every score so far) ranks the pool and the
``batch`` best are evaluated together (``Oracle.many``: one executor call, so a batch runs in
parallel where the score function does); the policy then takes a REINFORCE step on the batch
(advantage = score minus a moving-average baseline, in units of the scores' spread). The search
is *progressive*: the policy sharpens as rewards arrive, and the predictor takes a growing share
of the choice (the first batch, before any score, is the policy's own random pool).

Constraints (a ``FullDomain`` with a resource budget, or a shrunk domain) are handled by
*rejection*: a proposal outside the domain is never evaluated; it enters the policy update with
the worst score seen as its reward (a penalty), so the policy learns to leave infeasible regions.
Works on categorical base spaces (NB201, NB-Macro, MobileNet, toy).
"""

from __future__ import annotations

import numpy as np

from pipeline.searchers.base import BudgetSpent, Oracle
from pipeline.surrogate import Surrogate, SurrogateCfg
from spaces.base import CategoricalSpace


class Policy:
    """One softmax per decision over its options; samples archs and takes REINFORCE steps."""

    def __init__(self, space: CategoricalSpace, lr: float) -> None:
        self.space, self.lr = space, lr
        self.logits = [np.zeros(len(o)) for o in space.options]

    def probs(self) -> list[np.ndarray]:
        """Return each decision's option probabilities."""
        return [np.exp(z - z.max()) / np.exp(z - z.max()).sum() for z in self.logits]

    def sample(self, rng: np.random.Generator) -> str:
        """Draw one arch."""
        return self.space.to_str(tuple(opts[rng.choice(len(opts), p=p)]
                                       for opts, p in zip(self.space.options, self.probs(), strict=True)))

    def step(self, archs: list[str], advantages: np.ndarray) -> None:
        """Move the logits along the mean of advantage x grad log-probability."""
        probs = self.probs()
        codes = self.space.codes([self.space.from_str(a) for a in archs])
        for d, p in enumerate(probs):
            grad = np.zeros_like(p)
            for k, a in zip(codes[:, d], advantages, strict=True):
                grad += a * (np.eye(len(p))[k] - p)
            self.logits[d] += self.lr * grad / len(archs)


def epnas(domain, oracle: Oracle, rng: np.random.Generator, batch: int = 10, pool: int = 100, lr: float = 0.5,
          trees: int = 50) -> Oracle:
    """Run the EPNAS-style search until the oracle's budget is spent (or no new proposal is found)."""
    space = domain.space
    if not isinstance(space, CategoricalSpace):
        raise ValueError(f"the epnas searcher needs a space of decisions; {space.name} has none")
    policy, baseline = Policy(space, lr), None
    try:
        while oracle.left > 0:
            proposals, rejected = _pool(domain, oracle, policy, rng, pool)
            if not proposals:
                return oracle
            chosen = _rank(space, oracle, proposals, rng, trees)[:min(batch, oracle.left)]
            scores = oracle.many(chosen)
            finite = [s for s in oracle.cache.values() if np.isfinite(s)]
            worst = min(finite, default=0.0)
            rewards = np.array([s if np.isfinite(s) else worst for s in scores] + [worst] * len(rejected))
            baseline = rewards.mean() if baseline is None else 0.8 * baseline + 0.2 * rewards.mean()
            spread = float(np.std(finite)) or 1.0
            policy.step(chosen + rejected, (rewards - baseline) / spread)
    except BudgetSpent:
        pass
    return oracle


def _pool(domain, oracle: Oracle, policy: Policy, rng: np.random.Generator, size: int) -> tuple[list[str], list[str]]:
    """Return up to ``size`` distinct unevaluated in-domain proposals, and the out-of-domain ones drawn on the way."""
    found: dict[str, None] = {}
    rejected: list[str] = []
    for _ in range(20 * size):
        arch = policy.sample(rng)
        if arch in oracle.cache or arch in found:
            continue
        if arch in domain:
            found[arch] = None
            if len(found) == size:
                break
        elif len(rejected) < size:
            rejected.append(arch)
    if not found:  # the policy has collapsed onto evaluated archs: fall back to the domain's own sampler
        for _ in range(20 * size):
            arch = domain.sample(rng)
            if arch not in oracle.cache:
                found[arch] = None
                break
    return list(found), rejected


def _rank(space: CategoricalSpace, oracle: Oracle, proposals: list[str], rng: np.random.Generator,
          trees: int) -> list[str]:
    """Order proposals by the predictor's estimate (the policy's random order before two scores exist)."""
    known = [a for a, s in oracle.cache.items() if np.isfinite(s)]
    if len(known) < 2:
        return [proposals[i] for i in rng.permutation(len(proposals))]
    model = Surrogate(space, SurrogateCfg(trees=trees), int(rng.integers(2**31))).fit(known, [oracle.cache[a] for a in known])
    mean, _ = model.predict(proposals)
    return [proposals[i] for i in np.lexsort((np.arange(len(proposals)), -mean))]
