"""Unsupervised architecture embeddings in the manner of arch2vec (Yan et al., NeurIPS 2020).

A variational graph isomorphism autoencoder reads a space's graph view (``space.graphs``:
upper-triangular adjacency, node labels) and learns, without any accuracy label, to rebuild
both from a small latent vector per node: GIN layers over the adjacency made bidirectional
(``A + A^T``, so information flows both ways), a Gaussian latent per node, an operation decoder
(linear + softmax per node) and an edge decoder (a bilinear score per ordered node pair, only
the upper triangle, which fixes a DAG given the topological order). Loss = label cross-entropy
+ edge binary cross-entropy + ``beta`` x KL to N(0, I). An architecture's embedding is the mean
of its nodes' latent means. Inputs use the space's canonical form (isomorphic cells share one
graph).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from spaces.base import Arch, SearchSpace
from spaces.files import atomic_write

ENCODER_THREADS = 1  # torch threads of the encoder's training (like an evaluation's: pipeline/threads.py)


@dataclass(frozen=True)
class EmbeddingCfg:
    """Knobs of the encoder and its training (arch2vec's architecture, fewer passes for CPU)."""

    latent: int = 16  # latent size per node (and of the architecture's embedding)
    hidden: int = 128  # GIN hidden width
    layers: int = 5  # GIN layers
    steps: int = 3500  # optimiser steps (about 8 passes over NB201's 15,625 cells at batch 32)
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 0.005  # weight of the KL term
    max_train: int = 20000  # archs drawn uniformly when the space is larger (or not enumerable)
    seed: int = 0


class GraphVAE(nn.Module):
    """GIN encoder to a Gaussian latent per node; label and edge decoders."""

    def __init__(self, num_labels: int, cfg: EmbeddingCfg) -> None:
        super().__init__()
        dims = [num_labels, *[cfg.hidden] * cfg.layers]
        self.gin = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(), nn.Linear(b, b))
                                 for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.eps = nn.Parameter(torch.zeros(cfg.layers))
        self.mu, self.logvar = nn.Linear(cfg.hidden, cfg.latent), nn.Linear(cfg.hidden, cfg.latent)
        self.labels = nn.Linear(cfg.latent, num_labels)
        self.edges = nn.Bilinear(cfg.latent, cfg.latent, 1)

    def encode(self, adj: torch.Tensor, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return per-node latent means and log-variances ``[B, V, latent]``."""
        both = adj + adj.transpose(1, 2)
        h = onehot
        for k, mlp in enumerate(self.gin):
            h = (1 + self.eps[k]) * h + both @ h  # GIN aggregation: self + sum over neighbours
            b, v, d = h.shape
            h = mlp(h.reshape(b * v, d)).reshape(b, v, -1)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return label logits ``[B, V, K]`` and edge logits ``[B, V, V]``."""
        b, v, d = z.shape
        left = z.unsqueeze(2).expand(b, v, v, d).reshape(-1, d)
        right = z.unsqueeze(1).expand(b, v, v, d).reshape(-1, d)
        return self.labels(z), self.edges(left.contiguous(), right.contiguous()).reshape(b, v, v)


def _tensors(space: SearchSpace, archs: Sequence[Arch]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the graph view of ``archs`` as float adjacency and long labels."""
    adj, labels = space.graphs(list(archs))
    return torch.as_tensor(adj, dtype=torch.float32), torch.as_tensor(labels)


def _loss(model: GraphVAE, adj: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """Return the VAE loss of one batch (reconstruction + beta x KL)."""
    mu, logvar = model.encode(adj, F.one_hot(labels, model.labels.out_features).float())
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    label_logits, edge_logits = model.decode(z)
    upper = torch.triu(torch.ones_like(adj[0]), 1).bool()
    recon = F.cross_entropy(label_logits.flatten(0, 1), labels.flatten()) + \
        F.binary_cross_entropy_with_logits(edge_logits[:, upper], adj[:, upper])
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
    return recon + beta * kl


def train_encoder(space: SearchSpace, archs: Sequence[Arch], cfg: EmbeddingCfg,
                  progress: bool = False) -> GraphVAE:
    """Train the autoencoder on ``archs`` (no accuracy label is read; CUDA when present); return it on the CPU."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    adj, labels = (t.to(device) for t in _tensors(space, archs))
    model = GraphVAE(len(space.graph_ops()), cfg).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    epochs = -(-cfg.steps // -(-len(archs) // cfg.batch_size))  # whole passes, at least ``steps`` steps
    for epoch in range(epochs):
        order = torch.as_tensor(rng.permutation(len(archs)), device=device)
        total, start = 0.0, time.time()
        for batch in order.split(cfg.batch_size):
            loss = _loss(model, adj[batch], labels[batch], cfg.beta)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        if progress and (epoch + 1) % max(1, epochs // 8) == 0:
            print(f"embedding epoch {epoch + 1}/{epochs}: loss {total / len(archs):.4f} "
                  f"({time.time() - start:.1f} s)", flush=True)
    return model.cpu().eval()  # embedding and caching happen on the CPU


@torch.no_grad()
def embed(model: GraphVAE, space: SearchSpace, archs: Sequence[Arch], batch: int = 4096) -> np.ndarray:
    """Return each arch's embedding (mean over its nodes of the latent means) ``[N, latent]``."""
    adj, labels = _tensors(space, archs)
    out = []
    for start in range(0, len(archs), batch):
        onehot = F.one_hot(labels[start : start + batch], model.labels.out_features).float()
        out.append(model.encode(adj[start : start + batch], onehot)[0].mean(dim=1))
    return torch.cat(out).numpy() if out else np.zeros((0, model.mu.out_features), np.float32)


@torch.no_grad()
def reconstruction(model: GraphVAE, space: SearchSpace, archs: Sequence[Arch]) -> dict[str, float]:
    """Return label, edge and whole-graph reconstruction accuracy from the latent means (no sampling)."""
    adj, labels = _tensors(space, archs)
    mu, _ = model.encode(adj, F.one_hot(labels, model.labels.out_features).float())
    label_logits, edge_logits = model.decode(mu)
    upper = torch.triu(torch.ones_like(adj[0]), 1).bool()
    label_ok = label_logits.argmax(-1) == labels
    edge_ok = (edge_logits[:, upper] > 0).float() == adj[:, upper]
    whole = label_ok.all(1) & edge_ok.all(1)
    return {"ops_accuracy": float(label_ok.float().mean()), "adjacency_accuracy": float(edge_ok.float().mean()),
            "graph_accuracy": float(whole.float().mean())}


def training_archs(space: SearchSpace, cfg: EmbeddingCfg) -> list[Arch]:
    """Return every arch of an enumerable space up to ``max_train``, else a uniform sample of ``max_train``."""
    from spaces.base import CategoricalSpace

    if isinstance(space, CategoricalSpace) and space.size() <= cfg.max_train:
        import itertools

        return [space.validate(tuple(a)) for a in itertools.product(*space.options)]
    return space.sample_unique(min(cfg.max_train, space.size()), np.random.default_rng(cfg.seed))


def cache_key(space: SearchSpace, cfg: EmbeddingCfg) -> str:
    """Return the cache name of an encoder: the space's config and the training settings."""
    text = json.dumps({"space": space.config(), "cfg": asdict(cfg)}, sort_keys=True, default=str)
    return f"{space.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cached_encoder(space: SearchSpace, cfg: EmbeddingCfg, folder: Path, progress: bool = False) -> GraphVAE:
    """Load the encoder of (space, cfg) from ``folder``, training and saving it once when absent."""
    from pipeline.locks import exclusive
    from pipeline.threads import torch_threads

    path = Path(folder) / f"{cache_key(space, cfg)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Runs started together wait for the first to train it, then load it: one training, not one per run.
    with exclusive(path.with_name(path.name + ".lock"), f"encoder cache {path}", wait=True):
        model = GraphVAE(len(space.graph_ops()), cfg)
        if path.is_file():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        archs = training_archs(space, cfg)
        if progress:
            print(f"training the arch2vec encoder of {space.name} once ({len(archs):,} archs, {cfg.steps:,} steps, "
                  f"{ENCODER_THREADS} CPU thread; cached in {path} for every later run)", flush=True)
        with torch_threads(ENCODER_THREADS):  # fixed: torch's default oversubscribes a loaded machine
            model = train_encoder(space, archs, cfg, progress)
        atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
    return model


def describe(model: GraphVAE) -> dict[str, Any]:
    """Return the encoder's size, for logs."""
    return {"parameters": sum(p.numel() for p in model.parameters())}
