# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.geohsr-installed
OUT    ?= out

QGIS_VENV ?= .venv-qgis

.PHONY: demo test test-qgis setup clean qgis-plugin-zip check-wheel

# torch, pinned. The package index of the reference machine serves the CPU wheel for this pin;
# PyPI's Linux x86-64 wheel is the CUDA build, which pulls several GB of NVIDIA libraries: on a
# CPU-only machine pass TORCH_INDEX=https://download.pytorch.org/whl/cpu, on a GPU machine keep it
# empty (or name the CUDA index your driver needs, e.g. .../whl/cu126).
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
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
	$(MAKE) --no-print-directory test-qgis

# The QGIS plugin's tests run in real QGIS (Debian's python3-qgis), in a venv that sees the
# system's QGIS packages and holds only pytest and pytest-qgis. pytest-qgis keeps QGIS's profile
# (settings, auth database) in <rootdir>/.qgis-settings: the rootdir is a temporary folder.
test-qgis: $(STAMP)
	@if [ -x /usr/bin/qgis_process.bin ] && /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then \
		[ -x $(QGIS_VENV)/bin/pytest ] || { /usr/bin/python3 -m venv --system-site-packages $(QGIS_VENV) \
			&& $(QGIS_VENV)/bin/python -m pip install -q pytest pytest-qgis; }; \
		profile=$$(mktemp -d); \
		QT_QPA_PLATFORM=offscreen $(QGIS_VENV)/bin/python -m pytest -q -p no:cacheprovider \
			--rootdir "$$profile" qgis_plugin/tests; rc=$$?; rm -rf "$$profile"; exit $$rc; \
	else \
		echo "SKIPPED the QGIS plugin tests: QGIS is not installed (apt-get install qgis python3-qgis qgis-providers)"; \
	fi

qgis-plugin-zip:
	mkdir -p $(OUT)
	cd qgis_plugin && zip -qr ../$(OUT)/geohsr_qgis.zip geohsr_qgis -x '*__pycache__*'
	@echo "plugin zip: $(abspath $(OUT))/geohsr_qgis.zip"

clean:
	rm -rf $(VENV) $(QGIS_VENV) $(OUT) .pytest_cache

# build the wheel, install it in a fresh venv and run the demo from outside the repository
check-wheel: $(STAMP)
	scripts/check_wheel.sh
