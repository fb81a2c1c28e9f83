"""One-shot weight-sharing supernets (SPOS): models, training with checkpoints, subnet evaluation, search."""
