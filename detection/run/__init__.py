"""The run layer: one place that resolves a run and one that builds it.

    >>> from detection.run import resolve_run, build_run
    >>> run = resolve_run("configs/shapes_demo.yaml", overrides=["solver.max_iter=2"], output="output/try")
    >>> result = build_run(run).train()

:func:`resolve_run` turns config files, flags, ``section.key=value``
overrides and a saved run's config into a frozen :class:`Run` in which every
default is decided (:mod:`detection.run.resolve` lists them);
:func:`build_run` builds its model, data and trainer. The command-line
programs (:mod:`detection.cli`) are argument parsing around these, and so are
classification pretraining (:mod:`detection.run.pretrain`), evaluation of a
checkpoint (:mod:`detection.run.evaluate`) and the reproduction suites.
"""
from .build import BuiltRun, build_run
from .resolve import Run, default_pretrained, resolve_config, resolve_run, test_split

__all__ = ["BuiltRun", "Run", "build_run", "default_pretrained", "resolve_config", "resolve_run", "test_split"]
