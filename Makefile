# Set-up and the main commands in one step each: `make fit` trains with the original settings,
# `make test` runs the fast tests, `make test-full` all of them. Each creates the virtual environment first
# when it is missing.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# compiled to bytecode at install, as pip does: where PYTHONDONTWRITEBYTECODE is set, imports stay ~3x slower without
UV_INSTALL := $(PYTHON) -m uv pip install --python $(PYTHON) --compile-bytecode
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
EXTRAS ?= parity,export,serve,dev
# uv's resolution: lowest-direct installs the lowest versions pyproject.toml allows
RESOLUTION ?= highest

# the fast set: unit tests on small generated data, the commands' errors, the service in-process
FAST := not slow and not parity and not gpu and not browser and not distributed

.PHONY: fit test test-full test-lowest lint clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# uv installs the packages (~3x faster than pip here: parallel downloads and unpacking)
	$(PYTHON) -m pip install --quiet uv
	# torch first, as a CPU build: the wheel already on this machine (pip finds it in its find-links), else from
	# PyTorch's CPU index (a plain `pip install torch` on Linux brings a CUDA build of several GB)
	rm -rf $(VENV)/.torch-wheel
	if $(PYTHON) -m pip download --quiet --no-deps --no-index -d $(VENV)/.torch-wheel torch==$(TORCH_VERSION) \
			>/dev/null 2>&1; then \
		$(UV_INSTALL) --quiet $(VENV)/.torch-wheel/torch-*.whl; \
	else \
		$(UV_INSTALL) --quiet torch==$(TORCH_VERSION) --index-url $(TORCH_CPU_INDEX); \
	fi
	rm -rf $(VENV)/.torch-wheel
	$(UV_INSTALL) --quiet --resolution $(RESOLUTION) -e ".[$(EXTRAS)]"
	touch $@

fit: $(VENV)/.installed
	$(PYTHON) scripts/fit.py $(ARGS)

test: $(VENV)/.installed
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -m "$(FAST)" --hypothesis-profile fast $(ARGS)

# every test: real MNIST, the parity suite, several processes, the browser, the GPU where there is one
test-full: $(VENV)/.installed
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest $(ARGS)

# the fast set against the lowest versions of everything but torch (TensorFlow's parity suite aside), in an
# environment of their own: the dependency ranges are what was tested
test-lowest:
	$(MAKE) .venv-lowest/.installed VENV=.venv-lowest RESOLUTION=lowest-direct EXTRAS=export,serve,dev
	.venv-lowest/bin/python -m pytest -m "$(FAST)" $(ARGS)

clean:
	rm -rf $(VENV) .venv-lowest lightning_logs
