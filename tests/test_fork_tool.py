# SPDX-License-Identifier: Apache-2.0
"""tools/fork.py against synthetic upstream releases built in tmp dirs: no
network (the upstream trees are pre-placed in the cache, downloads are
file:// URLs)."""

import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.tool  # needs git and GNU patch; no GPU, no torch kernels

TOOL = Path(__file__).resolve().parents[1] / "tools" / "fork.py"
_spec = importlib.util.spec_from_file_location("fork_tool", TOOL)
fork = importlib.util.module_from_spec(_spec)
sys.modules["fork_tool"] = fork
_spec.loader.exec_module(fork)

A_PY = """def alpha():
    return 1


def beta(x):
    y = x + 1
    return y


def gamma():
    return 3
"""
B_PY = """VALUE = 1


def helper():
    return VALUE
"""
# The synthetic releases: 1.0.0 is pinned; 1.1.0 moves a.py's code down
# (offsets); 1.2.0 changes a context line near the patched one (no fuzz
# allowed, but git merges it); 2.0.0 changes the patched line itself (conflict).
RELEASES = {
    "1.0.0": {"a.py": A_PY, "b.py": B_PY},
    "1.1.0": {"a.py": "import os\nimport sys\n\n\n" + A_PY, "b.py": B_PY},
    "1.2.0": {"a.py": A_PY.replace("\n\n\ndef beta", "\n\n# beta follows\ndef beta"), "b.py": B_PY},
    "2.0.0": {"a.py": A_PY.replace("y = x + 1", "y = x * 1"), "b.py": B_PY},
}
OVERLAY_FILE = "vllm/new_file.py"
MESSAGE = """{subject}

Why: the fork needs it; a reason long enough
  to span two lines.
Upstream-Version: 1.0.0
Forwarded: no, fork-only: synthetic test patch
"""
BETA_PATCH = "0001-Make-beta-add-two.patch"
VALUE_PATCH = "0002-Raise-VALUE.patch"


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / "vllm" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "vllm" / name).write_text(text)


def make_patch(workdir: Path, base_files: dict[str, str], edits: dict[str, str], message: str) -> bytes:
    """A format-patch file (as `refresh` writes them) changing base_files by edits."""
    base = workdir / "base"
    write_tree(base, base_files)
    repo = fork.ScratchRepo.create(workdir / "repo", "base", base)
    write_tree(repo.path, edits)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", message)
    [(_, content)] = repo.format_patches("upstream-base")
    shutil.rmtree(workdir)
    return content


class Layout:
    """A synthetic fork repo + cache, and the tool's CLI run against it."""

    def __init__(self, root: Path, capsys):
        self.root, self.repo, self.cache = root, root / "repo", root / "cache"
        self.patches = self.repo / "patches"
        self.capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = fork.main(["--repo", str(self.repo), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def add_patch(self, name: str, edits: dict[str, str], message: str,
                  base_files: dict[str, str] = RELEASES["1.0.0"], listed: bool = True) -> Path:
        path = self.patches / name
        path.write_bytes(make_patch(self.root / "work", base_files, edits, message))
        if listed:
            with open(self.patches / "series", "a") as series:
                series.write(name + "\n")
        return path

    def set_pinned(self, version: str) -> None:
        upstream = json.loads((self.patches / "upstream.json").read_text())
        upstream["pinned"] = version
        (self.patches / "upstream.json").write_text(json.dumps(upstream))

    def git(self, cwd: Path, *args: str) -> str:
        env = {**fork.scratch_git_env(), "GIT_EDITOR": "true"}
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                              capture_output=True, text=True).stdout


@pytest.fixture
def layout(tmp_path, monkeypatch, capsys) -> Layout:
    lay = Layout(tmp_path, capsys)
    monkeypatch.setenv("CUSTOM_FP8_CACHE", str(lay.cache))
    for version, files in RELEASES.items():
        write_tree(lay.cache / f"vllm-{version}", files)
    lay.patches.mkdir(parents=True)
    (lay.patches / "upstream.json").write_text(json.dumps({
        "package": "vllm", "pinned": "1.0.0",
        "releases": {v: {"file": f"vllm-{v}.tar.gz", "sha256": "0" * 64,
                         "url": f"file:///nonexistent/vllm-{v}.tar.gz"} for v in RELEASES}}))
    (lay.patches / "series").write_text("# order of the series\n")
    write_tree(lay.repo, {"new_file.py": "NEW = True\n"})
    subprocess.run(["git", "init", "-q", str(lay.repo)], check=True)
    lay.add_patch(BETA_PATCH, {"a.py": A_PY.replace("x + 1", "x + 2")},
                  MESSAGE.format(subject="Make beta add two"))
    lay.add_patch(VALUE_PATCH, {"b.py": B_PY.replace("VALUE = 1", "VALUE = 2")},
                  MESSAGE.format(subject="Raise VALUE"))
    return lay


def test_clean_apply_and_check(layout):
    rc, out, err = layout.run("apply")
    assert rc == 0, err
    tree = layout.repo / "build" / "tree-1.0.0"
    assert (tree / "vllm" / "a.py").read_text() == A_PY.replace("x + 1", "x + 2")
    assert (tree / "vllm" / "b.py").read_text() == B_PY.replace("VALUE = 1", "VALUE = 2")
    assert (tree / OVERLAY_FILE).read_text() == "NEW = True\n"
    record = json.loads((tree / fork.APPLIED_RECORD).read_text())
    assert record["version"] == "1.0.0"
    assert [(p["name"], p["sha256"]) for p in record["patches"]] == [
        (name, hashlib.sha256((layout.patches / name).read_bytes()).hexdigest())
        for name in (BETA_PATCH, VALUE_PATCH)]
    assert "warning" not in err

    rc, out, _ = layout.run("check")
    assert rc == 0, out
    assert "series: 2 patches, 4 changed upstream lines (budget 8 patches, 400 lines)" in out
    assert "check: ok" in out

    rc, _, err = layout.run("apply")
    assert rc == 1 and "already has the series applied" in err


def test_offset_is_error_on_pinned_and_warning_elsewhere(layout):
    rc, out, _ = layout.run("check", "--version", "1.1.0")
    assert rc == 0, out
    assert f"warning: vllm 1.1.0: patch {BETA_PATCH}: file vllm/a.py hunk #1 applied at offset +4" in out

    rc, _, err = layout.run("apply", "--version", "1.1.0")
    assert rc == 0, err
    assert "hunk #1 applied at offset +4" in err

    layout.set_pinned("1.1.0")
    rc, out, _ = layout.run("check")
    assert rc == 1
    assert (f"vllm 1.1.0: patch {BETA_PATCH}: file vllm/a.py hunk #1 applied at offset +4 "
            "(offsets are errors on the pinned release 1.1.0: refresh the patch)") in out


@pytest.mark.parametrize("version", ["1.2.0", "2.0.0"])  # needs fuzz / is rejected
def test_fuzz_or_reject_is_an_error_and_changes_nothing(layout, version):
    rc, out, _ = layout.run("check", "--version", version)
    assert rc == 1
    assert f"vllm {version}: patch {BETA_PATCH}: file vllm/a.py hunk #1 does not apply" in out

    rc, _, err = layout.run("apply", "--version", version)
    assert rc == 1 and f"patch {BETA_PATCH}: file vllm/a.py hunk #1 does not apply" in err
    assert not (layout.repo / "build" / f"tree-{version}").exists()

    site = layout.root / "site"
    shutil.copytree(layout.cache / f"vllm-{version}", site)
    rc, _, err = layout.run("apply", "--version", version, "--into", str(site))
    assert rc == 1 and "nothing was changed" in err
    assert (site / "vllm" / "b.py").read_text() == B_PY  # the patch that applies was not applied either
    assert not (site / OVERLAY_FILE).exists() and not (site / fork.APPLIED_RECORD).exists()


def test_series_layout_problems(layout):
    layout.add_patch("0003-Unlisted.patch", {"b.py": B_PY + "\nEXTRA = 1\n"},
                     MESSAGE.format(subject="Unlisted"), listed=False)
    with open(layout.patches / "series", "a") as series:
        series.write("0004-No-such-file.patch\n" + BETA_PATCH + "\n")
    (layout.patches / "1.1.0").mkdir()
    (layout.patches / "1.1.0" / "0005-Stray.patch").write_bytes((layout.patches / BETA_PATCH).read_bytes())
    rc, out, _ = layout.run("check")
    assert rc == 1
    assert "patches/0003-Unlisted.patch is not listed in patches/series" in out
    assert "patches/series lists 0004-No-such-file.patch but patches/0004-No-such-file.patch does not exist" in out
    assert f"patches/series lists {BETA_PATCH} 2 times" in out
    assert "patches/1.1.0/0005-Stray.patch is not listed in patches/series" in out


def test_missing_header_fields(layout):
    text = (layout.patches / VALUE_PATCH).read_text()
    text = text.replace("Why: the fork needs it; a reason long enough\n  to span two lines.\n", "")
    text = text.replace("Forwarded: no, fork-only: synthetic test patch\n", "Forwarded:\n")
    text = text.replace("Subject: [PATCH] Raise VALUE\n", "")
    (layout.patches / VALUE_PATCH).write_text(text)
    (layout.patches / BETA_PATCH).write_text("just some text\n")
    rc, out, _ = layout.run("check")
    assert rc == 1
    problems = out.splitlines()
    assert f"patches/{VALUE_PATCH}: missing 'Subject:' header" in problems
    assert f"patches/{VALUE_PATCH}: missing 'Why:' line in the message" in problems
    assert f"patches/{VALUE_PATCH}: missing 'Forwarded:' line in the message" in problems
    assert f"patches/{BETA_PATCH}: not a git format-patch file: does not start with format-patch's " \
           f"'From <commit> <date>' line" in problems
    assert not any("Upstream-Version" in p for p in problems)


def test_patch_touching_the_overlay_is_reported(layout):
    base = {**RELEASES["1.0.0"], "new_file.py": "NEW = True\n"}
    layout.add_patch("0003-Touch-overlay.patch", {"new_file.py": "NEW = False\n"},
                     MESSAGE.format(subject="Touch overlay"), base_files=base)
    rc, out, _ = layout.run("check")
    assert rc == 1
    assert ("patches/0003-Touch-overlay.patch: touches vllm/new_file.py, a file of the fork's overlay: "
            "change it in the repo's vllm/, not by a patch") in out


def test_budget_exceeded_is_reported(layout, monkeypatch):
    monkeypatch.setattr(fork, "MAX_PATCHES", 1)
    monkeypatch.setattr(fork, "MAX_CHANGED_LINES", 3)
    rc, out, _ = layout.run("check")
    assert rc == 1
    assert "the series has 2 patches, over the budget of 1" in out
    assert "the series changes 4 upstream lines, over the budget of 3" in out


def test_apply_into_patches_in_place_once(layout):
    site = layout.root / "site-packages"
    shutil.copytree(layout.cache / "vllm-1.1.0", site)
    (site / "vllm" / "other.py").write_text("untouched\n")
    rc, _, err = layout.run("apply", "--version", "1.1.0", "--into", str(site))
    assert rc == 0, err
    assert "y = x + 2" in (site / "vllm" / "a.py").read_text()
    assert (site / "vllm" / "b.py").read_text() == B_PY.replace("VALUE = 1", "VALUE = 2")
    assert (site / OVERLAY_FILE).read_text() == "NEW = True\n"
    assert (site / "vllm" / "other.py").read_text() == "untouched\n"
    assert json.loads((site / fork.APPLIED_RECORD).read_text())["version"] == "1.1.0"

    rc, _, err = layout.run("apply", "--version", "1.1.0", "--into", str(site))
    assert rc == 1
    assert f"{site} already has the series applied (vllm 1.1.0: {BETA_PATCH}, {VALUE_PATCH}" in err


def test_rebase_with_offsets_only_needs_no_fixups(layout):
    rc, out, err = layout.run("rebase", "1.1.0")
    assert rc == 0, err
    assert "no fix-ups needed for vllm 1.1.0" in out
    assert not (layout.patches / "1.1.0").exists()


def test_rebase_writes_fixups_where_the_base_patch_needs_fuzz(layout):
    rc, out, err = layout.run("rebase", "1.2.0")
    assert rc == 0, err
    assert out.splitlines()[0] == f"wrote patches/1.2.0/{BETA_PATCH}"
    assert sorted(p.name for p in (layout.patches / "1.2.0").iterdir()) == [BETA_PATCH]
    rc, out, _ = layout.run("check", "--version", "1.2.0")
    assert rc == 0, out


def test_rebase_conflict_report_then_resolve_and_refresh(layout):
    rc, _, err = layout.run("rebase", "2.0.0")
    scratch = layout.repo / "build" / "rebase-2.0.0"
    assert rc == 1
    assert f"rebase onto vllm 2.0.0 stopped: patch {BETA_PATCH} conflicts in:\n  vllm/a.py\n" in err
    assert f"scratch repo: {scratch}" in err
    assert "git cherry-pick --continue" in err
    assert f"tools/fork.py refresh --from {scratch} --version 2.0.0" in err

    rc, _, err = layout.run("refresh", "--version", "2.0.0")
    assert rc == 1 and "a cherry-pick is in progress" in err

    resolved = RELEASES["2.0.0"]["a.py"].replace("x * 1", "x * 2")
    (scratch / "vllm" / "a.py").write_text(resolved)
    layout.git(scratch, "add", "vllm/a.py")
    layout.git(scratch, "cherry-pick", "--continue")
    rc, out, err = layout.run("refresh", "--version", "2.0.0")
    assert rc == 0, err
    assert out.splitlines() == [f"wrote patches/2.0.0/{BETA_PATCH}"]

    rc, out, _ = layout.run("check", "--version", "2.0.0")
    assert rc == 0, out
    rc, _, err = layout.run("apply", "--version", "2.0.0")
    assert rc == 0, err
    assert (layout.repo / "build" / "tree-2.0.0" / "vllm" / "a.py").read_text() == resolved

    rc, _, err = layout.run("rebase", "2.0.0")
    assert rc == 1 and "exists (an earlier rebase)" in err


def test_refresh_from_apply_git_is_byte_identical_and_adds_new_commits(layout):
    before = {p.name: p.read_bytes() for p in layout.patches.glob("*.patch")}
    rc, _, err = layout.run("apply", "--git")
    assert rc == 0, err
    tree = layout.repo / "build" / "tree-1.0.0"
    assert layout.git(tree, "status", "--porcelain") == ""  # overlay and record are excluded
    assert len(layout.git(tree, "rev-list", "upstream-1.0.0..HEAD").split()) == 2

    rc, out, err = layout.run("refresh")
    assert rc == 0, err
    assert "refreshed 2 patches" in out and "(0 changed)" in out
    assert {p.name: p.read_bytes() for p in layout.patches.glob("*.patch")} == before

    (tree / "vllm" / "b.py").write_text(B_PY.replace("VALUE = 1", "VALUE = 2") + "\nEXTRA = 3\n")
    layout.git(tree, "commit", "-q", "-a", "-m", MESSAGE.format(subject="Add EXTRA"))
    rc, out, err = layout.run("refresh")
    assert rc == 0, err
    assert "added patches/0003-Add-EXTRA.patch to patches/series" in out
    assert layout.run("check")[0] == 0


def test_range_diff_pairs_the_patches(layout):
    rc, out, err = layout.run("range-diff", "1.0.0", "1.1.0")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(" = " in line for line in lines), out
    assert "Make beta add two" in lines[0] and "Raise VALUE" in lines[1]


def make_sdist(path: Path, version: str) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {"setup.py": "", "vllm/__init__.py": "X = 1\n", "vllm/sub/m.py": "Y = 2\n"}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"vllm-{version}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_sha256_and_extracts_only_the_package(layout):
    sdist = layout.root / "vllm-9.9.9.tar.gz"
    real_sha = make_sdist(sdist, "9.9.9")
    upstream = json.loads((layout.patches / "upstream.json").read_text())
    upstream["releases"]["9.9.9"] = {"file": sdist.name, "sha256": "f" * 64, "url": sdist.as_uri()}
    (layout.patches / "upstream.json").write_text(json.dumps(upstream))
    rc, _, err = layout.run("fetch", "9.9.9")
    assert rc == 1
    assert f"expected {'f' * 64}, got {real_sha}" in err
    assert not list(layout.cache.glob("vllm-9.9.9*"))

    upstream["releases"]["9.9.9"]["sha256"] = real_sha
    (layout.patches / "upstream.json").write_text(json.dumps(upstream))
    rc, out, err = layout.run("fetch", "9.9.9")
    assert rc == 0, err
    assert out.strip() == str(layout.cache / "vllm-9.9.9" / "vllm")
    assert "100% (" in err
    extracted = layout.cache / "vllm-9.9.9"
    assert sorted(str(p.relative_to(extracted)) for p in extracted.rglob("*.py")) == [
        "vllm/__init__.py", "vllm/sub/m.py"]


def test_fetch_looks_up_an_unlisted_release_on_the_index(layout, monkeypatch):
    sdist = layout.root / "vllm-9.9.8.tar.gz"
    sha = make_sdist(sdist, "9.9.8")
    index = layout.root / "vllm-index.json"
    index.write_text(json.dumps({"files": [
        {"filename": "vllm-9.9.8-py3-none-any.whl", "url": "file:///wrong", "hashes": {"sha256": "0"}},
        {"filename": sdist.name, "url": sdist.as_uri(), "hashes": {"sha256": sha}}]}))
    monkeypatch.setattr(fork, "PYPI_SIMPLE_URL", f"file://{layout.root}/{{package}}-index.json")
    rc, out, err = layout.run("fetch", "9.9.8")
    assert rc == 0, err
    assert (layout.cache / "vllm-9.9.8" / "vllm" / "sub" / "m.py").read_text() == "Y = 2\n"


def test_status(layout):
    rc, out, _ = layout.run("status")
    assert rc == 0
    assert "pinned: vllm 1.0.0" in out
    assert f"  {BETA_PATCH}  +1 -1" in out
    assert "overlay: 1 files under vllm/" in out
    assert "  1.0.0 (pinned): no sdist, tree extracted" in out


@pytest.mark.parametrize("command", ["fetch", "apply", "check", "rebase", "refresh", "range-diff", "status"])
def test_help(command):
    proc = subprocess.run([sys.executable, str(TOOL), command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: tools/fork.py {command}")
