"""Autograding in sealed containers (docs/autograding.md).

``notebook`` (source + submission -> run plan), ``frames`` (the runner's signed output,
verified), ``scoring`` (frames -> points, never a pass without a ``pass`` frame),
``sandbox`` (the sealed container), ``settings`` (the traits of its limits).
"""
