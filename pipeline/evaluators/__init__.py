"""Evaluators: tabular benchmark lookup and short real training."""

from pipeline.evaluators.base import Evaluator, EvaluatorError

__all__ = ["Evaluator", "EvaluatorError"]
