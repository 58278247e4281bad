"""Shared by the binding's tests: where the golden cases are, and a summary line for them."""
import json
import os
from pathlib import Path

import pytest

ENV_GOLDEN = "BNDROP_GOLDEN_DIR"
PACKAGE_DIR = Path(__file__).resolve().parents[1]          # bindings/python
REPO = PACKAGE_DIR.parents[1]                              # the checkout
DEFAULT_GOLDEN = (REPO.parent / "shared" / "golden").resolve()


def golden_dir():
    """$BNDROP_GOLDEN_DIR (make test sets it from GOLDEN_DIR), else ../shared/golden beside the checkout,
    as the Swift and C runners look."""
    env = os.environ.get(ENV_GOLDEN)
    return (Path(env), f"{ENV_GOLDEN}={env}") if env else (DEFAULT_GOLDEN, "the default, ../shared/golden "
                                                                           "beside the checkout")


def golden_files():
    """Every *.json case, sorted, or (None, why) when there is none."""
    directory, source = golden_dir()
    hint = (f"Set {ENV_GOLDEN} to the folder that holds the golden *.json cases (make test sets it from "
            f"GOLDEN_DIR, by default ../shared/golden).")
    if not directory.is_dir():
        return None, f"golden cases: the folder {directory} ({source}) does not exist. {hint}"
    files = sorted(directory.glob("*.json"))
    if not files:
        return None, f"golden cases: no *.json case in {directory} ({source}). {hint}"
    return files, None


TEAM_GOLDEN = REPO / "Tests" / "golden"   # this repository's cases (Tests/golden/make_cases.py)


def team_golden_files():
    """Every *.json case in Tests/golden, sorted."""
    return sorted(TEAM_GOLDEN.glob("*.json"))


def source_env():
    """The environment for a child Python that must import this source tree's bndrop."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), env.get("PYTHONPATH")]))
    return env


def load_case(path):
    with open(path) as f:
        return json.load(f)


def pytest_terminal_summary(terminalreporter):
    for test, label in (("test_golden_case[", "golden"), ("test_team_golden_case[", "golden (Tests/golden)")):
        passed = [r for r in terminalreporter.stats.get("passed", []) if test in r.nodeid]
        failed = [r for r in terminalreporter.stats.get("failed", []) if test in r.nodeid]
        if passed or failed:
            terminalreporter.write_line(f"{label}: {len(passed)} of {len(passed) + len(failed)} cases passed "
                                        f"through the Python binding")


@pytest.fixture
def library_path():
    import bndrop
    return bndrop.library_path
