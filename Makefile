# Two entry points for a fresh machine: `make run` (main job on built-in defaults) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-browser clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/footseg run --out runs/main

# The web page's tests need onnxruntime-web (npm, pinned by web/package-lock.json) and Debian's chromium; CI runs as
# root and installs it (a failed install fails the target), elsewhere the browser tests skip with a message.
WEB_STAMP := web/node_modules/.installed

$(WEB_STAMP): web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $@

browser:
	@if test -x /usr/bin/chromium; then :; \
	elif test "$$(id -u)" = 0; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "make: no /usr/bin/chromium and not root (apt-get install chromium): the browser tests will skip"; fi

test: $(STAMP) $(WEB_STAMP) browser
	$(BIN)/ruff check src tests benchmarks docs scripts examples
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs scripts examples

# The speed table of issue 4, with MediaPipe's selfie segmenter as a peer. mediapipe lives in its own venv: its pins
# (numpy<2, protobuf<5) must not reach footseg's. If it cannot be installed, the peer rows are skipped with a message.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV) || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet mediapipe==0.10.21 ai-edge-litert==2.3.0 && touch $@ \
		|| echo "make bench: mediapipe did not install; footseg bench will skip the peer rows"

# int8 is calibrated on synthetic renders (never on the real photos that judge it): 80 images, made once. The default's
# int8 rows time the file its recipe made instead (it ships beside its weights); the renders calibrate the small tier.
BENCH_DATA := runs/bench-data

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/footseg synth $(BENCH_DATA) --n 80 --seed 0 --resume --no-progress
	$(BIN)/footseg bench fastlinknet_ctx fastlinknet --runtimes torch,onnx,onnx-int8 --threads 1,all --peer --data $(BENCH_DATA) \
		--json runs/bench.json

# The in-browser table: footseg's web page next to MediaPipe's selfie segmenter (@mediapipe/tasks-vision), live in
# headless Chromium on a small synthetic clip render (benchmarks/README.md, "In the browser").
bench-browser: $(STAMP) $(WEB_STAMP) $(BENCH_STAMP) browser
	$(BIN)/footseg bench --browser --json runs/bench-browser.json

clean:
	rm -rf $(VENV) runs
