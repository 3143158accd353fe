# SPDX-License-Identifier: Apache-2.0
"""The release artifacts: the fork's wheel and the plugin wheel
(tools/build_release.sh; CI builds them before the tests) and the Dockerfiles.

The wheel must be what its name says: upstream 0.25.1 with the series and the
overlay applied, upstream's dependencies, the fork's version, and a real
build of this tree's kernel library (the ops it registers, sm_90a SASS with
QGMMA, the source hash recorded at build time)."""

import json
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import fork  # noqa: E402

WHEELS = sorted((REPO / "dist").glob("vllm-*+customfp8.*.whl"))
needs_wheel = pytest.mark.skipif(not WHEELS, reason="no fork wheel in dist/ "
                                 "(bash tools/build_release.sh)")
PLUGIN_WHEELS = sorted((REPO / "dist").glob("vllm_custom_fp8-*.whl"))
LIBRARY = "vllm/custom_fp8/_C.abi3.so"


def metadata(whl: zipfile.ZipFile) -> tuple[str, dict]:
    name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    return name.split("/")[0], Parser().parsestr(whl.read(name).decode())


@pytest.fixture(scope="module")
def wheel() -> zipfile.ZipFile:
    return zipfile.ZipFile(WHEELS[-1])


@pytest.fixture(scope="module")
def upstream_wheel() -> zipfile.ZipFile:
    f = fork.Fork(REPO)
    info = json.loads((f.patches_dir / "upstream.json").read_text())["wheel"]
    path = f.cache_dir / info["file"]
    if not path.is_file():
        pytest.skip("the upstream wheel is not cached (tools/build_wheel.py fetches it)")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def fork_tree(tmp_path_factory):
    """Upstream 0.25.1 + series + overlay, materialized independently of the wheel."""
    f = fork.Fork(REPO)
    out = tmp_path_factory.mktemp("fork") / "tree"
    fork.apply_out(f, f.pinned, out, as_git=False)
    return out


@needs_wheel
def test_version(wheel):
    dist_info, meta = metadata(wheel)
    assert re.fullmatch(r"0\.25\.1\+customfp8\.\d+", meta["Version"]), meta["Version"]
    assert dist_info == f"vllm-{meta['Version']}.dist-info"
    version_py = wheel.read("vllm/_version.py").decode()
    assert f"__version__ = version = '{meta['Version']}'" in version_py


@needs_wheel
def test_same_dependencies_as_upstream(wheel, upstream_wheel):
    _, ours = metadata(wheel)
    _, theirs = metadata(upstream_wheel)
    assert sorted(ours.get_all("Requires-Dist")) == sorted(theirs.get_all("Requires-Dist"))


@needs_wheel
def test_patched_and_overlay_files(wheel, fork_tree):
    """Every file the series touches and every overlay file is byte-identical
    to the independently materialized tree."""
    f = fork.Fork(REPO)
    touched = {p for e in f.base_series() for p in fork.parse_patch(e.path).paths}
    files = touched | set(f.overlay_files())
    assert touched and files > touched
    for name in sorted(files):
        assert wheel.read(name) == (fork_tree / name).read_bytes(), name


@needs_wheel
def test_kernel_library_is_this_trees_build(wheel, tmp_path):
    import test_build

    from vllm.custom_fp8._library import read_build_info

    lib = tmp_path / "_C.abi3.so"
    lib.write_bytes(wheel.read("vllm/custom_fp8/_C.abi3.so"))
    info = read_build_info(lib)
    assert info["source_hash"] == test_build.source_hash() and info["cuda_archs"] == "90a"
    for op in test_build.SCHEMAS:
        assert op.encode() + b"\0" in lib.read_bytes(), op
    if shutil.which("cuobjdump") is None:
        pytest.skip("cuobjdump not on PATH")
    sass = subprocess.run(["cuobjdump", "--dump-sass", str(lib)], check=True,
                          capture_output=True, text=True).stdout
    assert set(re.findall(r"arch = (sm_\w+)", sass)) == {"sm_90a"}
    assert "QGMMA" in sass


@needs_wheel
def test_installs_and_reports_the_fork_version(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(WHEELS[-1])], check=True)
    out = subprocess.run([sys.executable, "-c", "import vllm; print(vllm.__version__)"],
                         cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                         check=True, capture_output=True, text=True).stdout.strip()
    assert re.fullmatch(r"0\.25\.1\+customfp8\.\d+", out), out


@pytest.mark.skipif(not PLUGIN_WHEELS, reason="no plugin wheel in dist/ "
                    "(bash tools/build_release.sh)")
def test_plugin_wheel_is_the_overlay_and_the_library():
    """Plugin mode (vllm/custom_fp8/plugin.py): exactly the overlay's files at
    their vLLM paths, byte for byte (never an upstream file), the kernel
    library, the entry point, and one wheel for every Python 3 (abi3)."""
    whl = zipfile.ZipFile(PLUGIN_WHEELS[-1])
    dist_info, _ = metadata(whl)
    files = {n for n in whl.namelist() if not n.startswith(dist_info + "/")}
    overlay = set(fork.Fork(REPO).overlay_files())
    assert files == overlay | {LIBRARY}, files ^ (overlay | {LIBRARY})
    for name in sorted(overlay):
        assert whl.read(name) == (REPO / name).read_bytes(), name
    assert whl.read(f"{dist_info}/entry_points.txt").decode().split() == \
        ["[vllm.general_plugins]", "custom_fp8", "=", "vllm.custom_fp8.plugin:register"]
    assert "-abi3-" in Path(whl.filename).name, whl.filename


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed")
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.plugin"])
def test_dockerfile_lint(dockerfile):
    result = subprocess.run(["hadolint", str(REPO / "docker" / dockerfile)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
