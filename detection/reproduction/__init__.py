"""Reproducing the paper's transfer experiments: suites of runs, their requirements and the report.

``experiments``: what each suite runs and the paper's numbers; ``requirements``:
what a run needs (data, weights, checkpoint, GPU); ``runner``: pretraining,
training and evaluation of one experiment; ``report``: report.md and its plots.
"""
