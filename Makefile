# Two commands for a newcomer: `make sandbox` (the whole loop on a local cluster) and `make test`.
# Each sets up what it needs: a virtualenv in .venv with the project, its test tools and SeaweedFS,
# and the Kubernetes control plane (built once from the Go modules into ~/.cache/retrain-devcluster).

PYTHON ?= python3
SANDBOX_ARGS ?=
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: sandbox test lint crd chart-readme venv control-plane images clean

# The four distributions of this repository, editable: the contract, the operator (with the test
# tools), the workload, and the dev tools (dev cluster, sandbox).
$(STAMP): pyproject.toml contract/pyproject.toml trainer_image/pyproject.toml tests/support/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./contract -e ".[test]" -e ./trainer_image -e ./tests/support
	touch $(STAMP)

venv: $(STAMP)

# kube-apiserver, kube-controller-manager, kube-scheduler and etcd: a cold build takes ~10 minutes, then seconds.
control-plane: $(STAMP)
	$(BIN)/python -m retrain_devcluster.binaries

sandbox: control-plane
	$(BIN)/retrain-sandbox $(SANDBOX_ARGS)

# Two workers, each with its own control plane and SeaweedFS (the suite mostly waits on pods and Jobs);
# the tests that measure latency run alone afterwards.
test: control-plane
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not exclusive and not images"
	$(BIN)/python -m pytest -q -m exclusive

# Both images, built without a daemon (buildah with vfs storage and chroot isolation, on a Debian
# bookworm base made with debootstrap and cached in ~/.cache/retrain-images), pinned to that base's
# digest; each entrypoint answers --help; sizes printed. 3-5 minutes, so not part of `test`. Needs root.
images: $(STAMP)
	@command -v buildah >/dev/null && command -v debootstrap >/dev/null || \
		{ echo "installing buildah and debootstrap (apt-get)"; apt-get update -qq && apt-get install -y -qq buildah debootstrap; }
	$(BIN)/python -m pytest -q -m images tests/images

lint: $(STAMP)
	$(BIN)/ruff check contract operator trainer_image tests benchmarks helm

crd: $(STAMP)
	$(BIN)/python -m retrain_operator.api.crd --write
	$(BIN)/python -m retrain_operator.api.reference --write

# The values table of helm/retrain-operator/README.md, from the `# --` comments of its values.yaml.
chart-readme: $(STAMP)
	$(BIN)/python helm/chart_readme.py --write

clean:
	rm -rf $(VENV) .sandbox .pytest_cache
