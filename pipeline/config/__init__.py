"""Every knob declared once, with its default and rule, in light modules (no torch, scikit-learn or networkx):
``knobs`` (how a knob is declared and checked), ``stages`` (each stage's config class), ``groups`` (the loop,
plan, tracking, constraints and the commands' own knobs; the rules of the ``_target_`` groups)."""
