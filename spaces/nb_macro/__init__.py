"""NAS-Bench-Macro: 8 layers x {identity, MBConv k3 e3, MBConv k5 e6} = 6,561 CIFAR-10 networks."""

from spaces.nb_macro.space import OPS, NBMacroSpace

__all__ = ["OPS", "NBMacroSpace"]
