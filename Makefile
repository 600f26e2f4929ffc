# Two commands do all set-up on a fresh machine:
#   make demo   - train the chapter's LeNet on Fashion-MNIST and show the result
#   make test   - run the test suite
# Both create .venv, install cnnlab with its test tools and fetch Fashion-MNIST when it is missing.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cnnlab-installed
# torch and torchvision must come as a matching pair; torchvision is only needed for reference checks.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data demo test lint bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,export,notebook]'
	touch $@

# Fashion-MNIST from the Debian package when it can be installed; otherwise cnnlab downloads it on first use.
data:
	@if [ ! -f $(FMNIST) ] && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist || \
		echo "dataset-fashion-mnist not installed: cnnlab will download Fashion-MNIST instead"; \
	fi

demo: setup data
	$(VENV)/bin/cnnlab train lenet

test: setup data
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
