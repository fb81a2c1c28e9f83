"""Light config declarations (no heavy imports): the stages' dataclasses."""
