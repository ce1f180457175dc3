"""Classification pretraining of registry backbones: the paper's ImageNet stage (He et al. 2015, Sec. 3.4).

- :mod:`pretraining.config`: the settings (the paper's recipe by default), one dataclass per section;
- :mod:`pretraining.data`: ImageFolder data with scale augmentation, PCA lighting and 10-crop testing;
- :mod:`pretraining.trainer`: the training loop (schedules, validation, exact resume) and evaluation;
- :mod:`pretraining.run`: a whole run from a config and its data sets.

The weights it writes load with ``backbones.build(name, pretrained=PATH)``.
Configs are read and data resolved by the run layer, ``detection.run.pretrain``.
"""
