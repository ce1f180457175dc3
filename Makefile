# Two commands on a fresh machine with Python 3.11 and pip: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := output/demo

.PHONY: demo test install clean

install: $(STAMP)

# (Re)install whenever pyproject.toml changes; torch and torchvision come pinned from it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/train_det.py --config configs/shapes_demo.yaml --output $(DEMO) --overwrite
	$(PY) tools/eval_voc.py --checkpoint $(DEMO)/model_final.pth
	$(PY) tools/eval_coco.py --checkpoint $(DEMO)/model_final.pth
	$(PY) tools/visualize.py --checkpoint $(DEMO)/model_final.pth --output $(DEMO)/predictions.png

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) output datasets/shapes
