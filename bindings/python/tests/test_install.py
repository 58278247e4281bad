"""Installing and finding the library: `pip install` of the package into a temporary venv (offline:
no build isolation, no index) and importing it from there; the search order and its error message."""
import ctypes.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PACKAGE_DIR, REPO

CHECKOUT_LIBRARY = REPO / ".build" / "release" / "libbndrop.so"
SMOKE = textwrap.dedent("""
    import bndrop, numpy as np
    net = bndrop.Net(3).add_linear(2)
    assert net.forward(np.ones((4, 3))).shape == (4, 2)
    print(bndrop.__file__)
    print(bndrop.library_path)
""")


def run(args, env=None, cwd=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def env_without_library():
    env = dict(os.environ)
    env.pop("BNDROP_LIBRARY", None)
    env.pop("PYTHONPATH", None)
    return env


def installed_library_exists():
    return ctypes.util.find_library("bndrop") is not None or any(
        Path(d, n).exists() for d in ("/usr/local/lib", "/usr/lib") for n in ("libbndrop.so.0", "libbndrop.so"))


def test_pip_install_into_a_venv(tmp_path, library_path):
    """pip install of a copy of bindings/python (so that the build leaves nothing in the checkout) into a
    new venv, offline: the venv sees the interpreter's own packages (numpy, pip, setuptools) and pip
    builds with them instead of downloading a build backend."""
    try:
        import pip  # noqa: F401
    except ImportError:
        pytest.skip(f"no pip for {sys.executable} (Debian: apt-get install python3-pip)")
    source = tmp_path / "src"
    shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build"))
    venv_dir = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv_dir)])
    assert made.returncode == 0, made.stdout + made.stderr
    python = str(venv_dir / "bin" / "python")
    installed = run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps",
                     "--disable-pip-version-check", "--quiet", str(source)], env=env_without_library())
    if installed.returncode != 0 and "No module named 'setuptools'" in installed.stderr:
        pytest.skip(f"no setuptools for {sys.executable} to build with offline (Debian: python3-setuptools)")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert list(venv_dir.glob("lib/python3*/site-packages/bndrop/_lib.py")), "not installed into the venv"
    # Imported from the venv (not the checkout), with the library named by BNDROP_LIBRARY.
    env = dict(env_without_library(), BNDROP_LIBRARY=library_path)
    result = run([python, "-c", SMOKE], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    module, loaded = result.stdout.split()
    assert module.startswith(str(venv_dir)) and loaded == library_path
    # Without BNDROP_LIBRARY an installed copy is not inside a checkout: it finds an installed
    # libbndrop or fails naming every place it tried.
    result = run([python, "-c", SMOKE], env=env_without_library(), cwd=tmp_path)
    if installed_library_exists():
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert "ImportError: bndrop: cannot find libbndrop.so. Tried, in order:" in result.stderr
        for place in ("BNDROP_LIBRARY: not set", "ctypes.util.find_library('bndrop'): nothing found",
                      "/usr/local/lib/libbndrop.so.0: no such file", "is not inside a checkout"):
            assert place in result.stderr, result.stderr


def test_the_checkout_finds_its_own_build(tmp_path):
    if not CHECKOUT_LIBRARY.exists():
        pytest.skip(f"no {CHECKOUT_LIBRARY} (run make)")
    env = dict(env_without_library(), PYTHONPATH=str(PACKAGE_DIR))
    result = run([sys.executable, "-c", SMOKE], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    module, loaded = result.stdout.split()
    assert Path(module).parent == PACKAGE_DIR / "bndrop"
    if not installed_library_exists():
        assert Path(loaded) == CHECKOUT_LIBRARY


def test_a_wrong_bndrop_library_is_an_import_error(tmp_path):
    env = dict(env_without_library(), PYTHONPATH=str(PACKAGE_DIR), BNDROP_LIBRARY=str(tmp_path / "nope.so"))
    result = run([sys.executable, "-c", "import bndrop"], env=env, cwd=tmp_path)
    assert result.returncode != 0
    expected = f"ImportError: bndrop: cannot load the library named by BNDROP_LIBRARY={tmp_path / 'nope.so'}"
    assert expected in result.stderr
