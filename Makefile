# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.geohsr-installed
OUT    ?= out

.PHONY: demo test setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel of torch (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	mkdir -p $(OUT)
	$(VENV)/bin/geohsr info "$$($(PY) -c 'import geohsr; print(geohsr.demo_scene_path())')"
	$(VENV)/bin/geohsr run "$$($(PY) -c 'import geohsr; print(geohsr.demo_scene_path())')" \
		--scale 4 -o $(OUT)/enmap_potsdam_demo_x4.tif --overwrite
	@echo "demo output: $(abspath $(OUT))/enmap_potsdam_demo_x4.tif"

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
