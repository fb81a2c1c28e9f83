"""NAS-Bench-101 cell space: DAGs of up to 7 vertices and 9 edges, 423,624 unique cells."""

from spaces.nb101.space import NB101_SIZE, OPS, NB101Space

__all__ = ["NB101_SIZE", "OPS", "NB101Space"]
