"""Estimators: turn a resolved model and a workload into per-phase live memory and a peak.

* ``seed``: the DataLearner (2023) article's rules of thumb, reproduced exactly;
* ``analytic``: closed-form, architecture-aware, phase-aware (the default).
"""
