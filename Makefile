# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := output/demo

.PHONY: demo test install clean

install: $(STAMP)

# (Re)install whenever pyproject.toml changes; torch and torchvision come pinned from it. detectron2's
# Python package comes from the pb1-detectron2 sdist, downloaded by pip (see detectron2_plugin/install.py,
# which tools/fetch_detectron2.py runs, and README).
$(STAMP): pyproject.toml tools/fetch_detectron2.py detectron2_plugin/install.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) tools/fetch_detectron2.py
	touch $(STAMP)

# Pretrain the backbone on object crops (the paper's ImageNet step in miniature), fine-tune the
# detector from it, evaluate once from the checkpoint and reuse the saved predictions, then predict on
# image files as a user would on their own (drawn copies in $(DEMO)/predicted/drawn).
demo: $(STAMP)
	$(PY) tools/pretrain_cls.py --config configs/pretrain/shapes_crops.yaml \
		--output $(DEMO)/resnet18_shapes_cls.pth --overwrite
	$(PY) tools/train_det.py --config configs/shapes_demo.yaml --pretrained $(DEMO)/resnet18_shapes_cls.pth \
		--output $(DEMO) --overwrite
	$(PY) tools/eval_voc.py --checkpoint $(DEMO)/model_final.pth
	$(PY) tools/eval_coco.py --predictions $(DEMO)/model_final.shapes_val.predictions.json --dataset shapes_val
	$(PY) tools/visualize.py --predictions $(DEMO)/model_final.shapes_val.predictions.json --dataset shapes_val
	$(PY) tools/predict.py $(DEMO)/model_final.pth 'datasets/shapes/JPEGImages/val_0000*.jpg' \
		--output $(DEMO)/predicted --draw

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) output datasets/shapes
