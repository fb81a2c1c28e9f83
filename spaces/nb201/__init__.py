"""NAS-Bench-201 cell space."""

from spaces.nb201.space import EDGES, OPS, NB201Space

__all__ = ["EDGES", "OPS", "NB201Space"]
