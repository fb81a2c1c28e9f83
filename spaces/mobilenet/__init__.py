"""OFA-style MobileNetV3 macro space: 5 stages x depth {2,3,4} x kernel {3,5,7} x expansion {3,4,6}."""

from spaces.mobilenet.space import LAYERS, SKIP, MobileNetSpace

__all__ = ["LAYERS", "SKIP", "MobileNetSpace"]
