#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Manage the fork's patch series against upstream vLLM.

The fork = the pinned upstream vLLM release (patches/upstream.json)
         + a short series of patches to upstream files (patches/series,
           patches/NNNN-slug.patch, per-release fix-ups in patches/<version>/)
         + an overlay of files the fork adds at their vLLM paths (the repo's
           vllm/ directory, copied in after the patches).

README.md, "The patch series and its tooling", describes the workflow.
Standard library only, plus the `git` and GNU `patch` binaries.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

# The series is kept small enough to carry from release to release; past this
# budget a change belongs in the overlay or upstream.
MAX_PATCHES = 8
MAX_CHANGED_LINES = 400

APPLIED_RECORD = ".custom_fp8_applied.json"
PACKAGE_DIR = "vllm"  # the import package inside the sdist and in the repo's overlay
PYPI_SIMPLE_URL = "https://pypi.org/simple/{package}/"
PYPI_SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"  # PEP 691
REQUIRED_TRAILERS = ("Why", "Upstream-Version", "Forwarded")

# --fuzz=0: a hunk that needs fuzz is reported as FAILED, so fuzz never goes
# unnoticed. --batch --forward: never ask, never reverse a patch that looks
# already applied. --reject-file=-: rejects are reported, not left as .rej files.
GNU_PATCH_OPTIONS = ["-p1", "--fuzz=0", "--no-backup-if-mismatch", "--forward", "--batch",
                     "--reject-file=-", "--quoting-style=literal"]
# What `refresh` writes: no hashes, signature or stat that would change when
# nothing else did; core.abbrev fixed so index lines do not grow with the repo.
FORMAT_PATCH_OPTIONS = ["--zero-commit", "--no-signature", "--no-stat", "--no-numbered",
                        "--no-renames"]

TOOL_ROOT = Path(__file__).resolve().parents[1]


class ForkError(Exception):
    """A problem the user has to fix; main() prints it without a traceback."""


# ---------------------------------------------------------------- the layout

@dataclasses.dataclass
class SeriesEntry:
    name: str  # the file name listed in patches/series
    path: Path  # the file used: the release's fix-up if there is one, else the base patch


class Fork:
    """The repo's patch-series layout: patches/, the overlay, the cache and build dirs."""

    def __init__(self, root: Path):
        self.root = root
        self.patches_dir = root / "patches"
        self.build_dir = root / "build"
        self.cache_dir = Path(os.environ.get("CUSTOM_FP8_CACHE") or root / ".cache" / "upstream")
        upstream_json = self.patches_dir / "upstream.json"
        if not upstream_json.is_file():
            raise ForkError(f"{upstream_json} not found: is {root} the fork's repo? (--repo)")
        upstream = json.loads(upstream_json.read_text())
        self.package: str = upstream["package"]
        self.pinned: str = upstream["pinned"]
        self.releases: dict[str, dict] = upstream["releases"]

    def series_names(self) -> list[str]:
        """patches/series as written, duplicates included (check reports them)."""
        series = self.patches_dir / "series"
        if not series.is_file():
            raise ForkError(f"{series} not found")
        names = (line.split("#", 1)[0].strip() for line in series.read_text().splitlines())
        return [name for name in names if name]

    def base_series(self) -> list[SeriesEntry]:
        return self._entries(lambda name: self.patches_dir / name)

    def series_for(self, version: str) -> list[SeriesEntry]:
        return self._entries(lambda name: self.release_patch(name, version))

    def release_patch(self, name: str, version: str) -> Path:
        """The patch file used for `version`: a patch in patches/<version>/
        replaces the base patch of the same name."""
        fixup = self.patches_dir / version / name
        return fixup if fixup.is_file() else self.patches_dir / name

    def _entries(self, path_of) -> list[SeriesEntry]:
        names = self.series_names()
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ForkError(f"patches/series lists {', '.join(duplicates)} more than once")
        missing = [name for name in names if not (self.patches_dir / name).is_file()]
        if missing:
            raise ForkError(f"patches/series lists {', '.join(missing)} but patches/ has no such file")
        return [SeriesEntry(name, path_of(name)) for name in names]

    def fixup_dirs(self) -> list[Path]:
        return sorted(p for p in self.patches_dir.iterdir() if p.is_dir())

    def overlay_files(self) -> list[str]:
        """Repo-relative paths of the overlay: files under vllm/ that git does
        not ignore (so __pycache__ and built .so files are not part of it)."""
        proc = subprocess.run(
            ["git", "-C", str(self.root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard", "--", PACKAGE_DIR],
            capture_output=True, text=True)
        if proc.returncode:
            raise ForkError(f"cannot list the overlay with git in {self.root}: {proc.stderr.strip()}")
        return sorted({p for p in proc.stdout.split("\0") if p and (self.root / p).is_file()})

    def relative(self, path: Path) -> str:
        """A path as shown to the user: relative to the repo when inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # Upstream trees in the cache: <cache>/vllm-VERSION/vllm/
    def sdist_path(self, version: str) -> Path:
        return self.cache_dir / f"{self.package}-{version}.tar.gz"

    def tree_root(self, version: str) -> Path:
        return self.cache_dir / f"{self.package}-{version}"

    def upstream_tree(self, version: str) -> Path:
        """The cached upstream tree root (holding vllm/), fetched if missing."""
        root = self.tree_root(version)
        if not (root / PACKAGE_DIR).is_dir():
            extract_package(self, fetch_sdist(self, version), version)
        return root


# ------------------------------------------------------------------- fetching

def check_version_name(version: str) -> str:
    # The version becomes part of cache, build and fix-up paths.
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", version):
        raise argparse.ArgumentTypeError(f"not a release version: {version!r}")
    return version


def release_info(fork: Fork, version: str) -> dict:
    """file, url and sha256 of the release's sdist: from upstream.json, else
    from PyPI's JSON simple API (PEP 691)."""
    if version in fork.releases:
        return fork.releases[version]
    print(f"{fork.package} {version} is not in patches/upstream.json: looking it up on PyPI",
          file=sys.stderr)
    request = urllib.request.Request(PYPI_SIMPLE_URL.format(package=fork.package),
                                     headers={"Accept": PYPI_SIMPLE_JSON})
    with open_url(request) as response:
        index = json.load(response)
    filename = f"{fork.package}-{version}.tar.gz"
    for file in index["files"]:
        if file["filename"] == filename:
            return {"file": filename, "url": file["url"], "sha256": file["hashes"]["sha256"]}
    raise ForkError(f"PyPI lists no {filename}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_url(request: urllib.request.Request | str):
    try:
        return urllib.request.urlopen(request, timeout=60)
    except OSError as e:  # URLError and HTTPError included
        url = request if isinstance(request, str) else request.full_url
        raise ForkError(f"cannot get {url}: {e}") from None


def download(url: str, dest: Path) -> None:
    """Download with a progress line on stderr."""
    with open_url(url) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done, shown = 0, None
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            progress = (f"{100 * done // total:3d}% ({done / 1e6:.1f} of {total / 1e6:.1f} MB)"
                        if total else f"{done / 1e6:.1f} MB")
            if progress != shown:
                print(f"\r{dest.name.removesuffix('.part')}: {progress}", end="", file=sys.stderr,
                      flush=True)
                shown = progress
        print(file=sys.stderr)


def fetch_sdist(fork: Fork, version: str) -> Path:
    """The release's sdist in the cache, downloaded if missing; sha256-checked either way."""
    info = release_info(fork, version)
    sdist = fork.sdist_path(version)
    if sdist.is_file():
        got = sha256_of(sdist)
        if got != info["sha256"]:
            raise ForkError(f"sha256 mismatch for {sdist} (cached): expected {info['sha256']}, "
                            f"got {got}; delete it to download again")
        return sdist
    fork.cache_dir.mkdir(parents=True, exist_ok=True)
    partial = sdist.with_name(sdist.name + ".part")
    download(info["url"], partial)
    got = sha256_of(partial)
    if got != info["sha256"]:
        partial.unlink()
        raise ForkError(f"sha256 mismatch for {info['url']}: expected {info['sha256']}, got {got}")
    partial.rename(sdist)
    return sdist


def extract_package(fork: Fork, sdist: Path, version: str) -> None:
    """Extract only <package>-<version>/vllm/ from the sdist, into the cache,
    via a temporary dir so an interrupted run leaves no partial tree."""
    top = f"{fork.package}-{version}"
    prefix = f"{top}/{PACKAGE_DIR}/"
    with tarfile.open(sdist) as tar, tempfile.TemporaryDirectory(dir=fork.cache_dir) as tmp:
        for member in tar:
            if not member.name.startswith(prefix):
                continue
            parts = PurePosixPath(member.name).parts
            if ".." in parts:
                raise ForkError(f"{sdist.name}: unsafe member name {member.name}")
            target = Path(tmp, *parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
            else:
                raise ForkError(f"{sdist.name}: {member.name} is neither a file nor a directory")
        if not Path(tmp, top, PACKAGE_DIR).is_dir():
            raise ForkError(f"{sdist.name} has no {prefix}")
        Path(tmp, top).rename(fork.tree_root(version))


# ------------------------------------------------------------ patch parsing

class PatchFormatError(Exception):
    """The file is not a git format-patch file this tool can apply."""


@dataclasses.dataclass
class FileDiff:
    old: str | None  # None: the patch creates the file
    new: str | None  # None: the patch deletes the file


@dataclasses.dataclass
class Patch:
    headers: dict[str, str]  # lower-case names: "from", "subject", ...
    trailers: dict[str, str]  # Why, Upstream-Version, Forwarded
    files: list[FileDiff]
    added: int
    removed: int

    @property
    def paths(self) -> set[str]:
        return {p for f in self.files for p in (f.old, f.new) if p is not None}

    @property
    def changed_lines(self) -> int:
        return self.added + self.removed


MBOX_FROM_LINE = re.compile(r"From [0-9a-f]{40} ")
TRAILER_LINE = re.compile(rf"({'|'.join(REQUIRED_TRAILERS)}):[ \t]*(.*)")
DIFF_GIT_LINE = re.compile(r"diff --git a/(\S+) b/(\S+)$")
HUNK_LINE = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
GIT_EXTENDED_HEADERS = ("old mode ", "new mode ", "index ", "similarity index ",
                        "dissimilarity index ", "copy from ", "copy to ")


def diff_path(spec: str, prefix: str) -> str | None:
    if spec.startswith('"'):
        raise PatchFormatError(f"quoted file names are not supported: {spec}")
    spec = spec.split("\t", 1)[0]
    if spec == "/dev/null":
        return None
    if not spec.startswith(prefix):
        raise PatchFormatError(f"file name {spec} lacks the {prefix} prefix (-p1)")
    return spec[len(prefix):]


def parse_patch(path: Path) -> Patch:
    """Parse a git format-patch file: mail headers, message trailers, the diff."""
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").split("\n")
    if not MBOX_FROM_LINE.match(lines[0]):
        raise PatchFormatError("does not start with format-patch's 'From <commit> <date>' line")
    headers: dict[str, str] = {}
    i, name = 1, None
    while i < len(lines) and lines[i]:
        line = lines[i]
        if line[:1] in (" ", "\t") and name:
            headers[name] += " " + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            name = name.lower()
            headers[name] = value.strip()
        else:
            raise PatchFormatError(f"line {i + 1} is not a mail header: {line!r}")
        i += 1
    # The message ends where mailinfo ends it: at "---" (before a diffstat) or at the diff.
    separator = next((j for j in range(i, len(lines))
                      if lines[j] == "---" or lines[j].startswith("diff --git ")), len(lines))

    trailers: dict[str, str] = {}
    key = None
    for line in lines[i + 1:separator]:
        if match := TRAILER_LINE.fullmatch(line):
            key = match[1]
            trailers[key] = match[2].strip()
        elif key and line[:1] in (" ", "\t"):  # continuation of a multi-line trailer
            trailers[key] = f"{trailers[key]} {line.strip()}".strip()
        else:
            key = None

    files: list[FileDiff] = []
    added = removed = 0
    i = separator
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            match = DIFF_GIT_LINE.match(line)
            if not match:
                raise PatchFormatError(f"cannot read file names from {line!r}")
            diff = FileDiff(match[1], match[2])
            i += 1
            while i < len(lines) and not lines[i].startswith(("diff --git ", "@@ ")):
                header = lines[i]
                if header.startswith("new file mode "):
                    diff.old = None
                elif header.startswith("deleted file mode "):
                    diff.new = None
                elif header.startswith("rename from "):
                    diff.old = header[len("rename from "):]
                elif header.startswith("rename to "):
                    diff.new = header[len("rename to "):]
                elif header.startswith("--- "):
                    diff.old = diff_path(header[4:], "a/")
                elif header.startswith("+++ "):
                    diff.new = diff_path(header[4:], "b/")
                elif header.startswith(("GIT binary patch", "Binary files ")):
                    raise PatchFormatError(f"binary diff of {match[2]}: GNU patch cannot apply it")
                elif not header.startswith(GIT_EXTENDED_HEADERS):
                    break  # the end of a diff without hunks (mode change only)
                i += 1
            files.append(diff)
        elif line.startswith("@@ ") and files:
            match = HUNK_LINE.match(line)
            if not match:
                raise PatchFormatError(f"malformed hunk header {line!r}")
            old_left = int(match[1] if match[1] is not None else 1)
            new_left = int(match[2] if match[2] is not None else 1)
            i += 1
            while old_left or new_left:
                if i >= len(lines):
                    raise PatchFormatError(f"hunk {line!r} is cut short")
                body = lines[i][:1]
                if body in (" ", ""):  # an empty line is context whose blank was lost in mail
                    old_left, new_left = old_left - 1, new_left - 1
                elif body == "-":
                    old_left, removed = old_left - 1, removed + 1
                elif body == "+":
                    new_left, added = new_left - 1, added + 1
                elif body != "\\":  # "\ No newline at end of file"
                    raise PatchFormatError(f"hunk {line!r} is malformed at line {i + 1}")
                if old_left < 0 or new_left < 0:
                    raise PatchFormatError(f"hunk {line!r} has more lines than its header says")
                i += 1
        else:
            i += 1  # diffstat, "\ No newline", the signature
    if not files:
        raise PatchFormatError("contains no diff")
    return Patch(headers, trailers, files, added, removed)


# ------------------------------------------------------- applying with GNU patch

HUNK_OFFSET_LINE = re.compile(r"Hunk #(\d+) succeeded at \d+ \(offset (-?\d+) lines?\)\.")
HUNK_FAILED_LINE = re.compile(r"Hunk #(\d+) FAILED at (\d+)")
PATCHING_FILE_LINE = re.compile(r"patching file (.+)")


@dataclasses.dataclass
class PatchReport:
    """What GNU patch said: offsets (the caller decides if they are allowed) and errors."""
    offsets: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)

    def extend(self, other: "PatchReport") -> None:
        self.offsets += other.offsets
        self.errors += other.errors


def run_gnu_patch(patch_file: Path, name: str, root: Path) -> PatchReport:
    """Apply one patch with GNU patch to the tree at root and read its output."""
    proc = subprocess.run(["patch", *GNU_PATCH_OPTIONS, "-d", str(root), "-i", str(patch_file)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "LC_ALL": "C"})
    report = PatchReport()
    file = "?"
    for line in proc.stdout.splitlines():
        if match := PATCHING_FILE_LINE.fullmatch(line):
            file = match[1]
        elif match := HUNK_OFFSET_LINE.fullmatch(line):
            report.offsets.append(
                f"patch {name}: file {file} hunk #{match[1]} applied at offset {int(match[2]):+d}")
        elif match := HUNK_FAILED_LINE.match(line):
            report.errors.append(f"patch {name}: file {file} hunk #{match[1]} does not apply "
                                 f"(FAILED at line {match[2]}; fuzz is not allowed)")
    if proc.returncode and not report.errors:
        output = " | ".join(l for l in (proc.stdout + proc.stderr).splitlines() if l.strip())
        report.errors.append(f"patch {name}: GNU patch failed: {output}")
    return report


def copy_files(paths: set[str], source_root: Path, dest_root: Path) -> None:
    for path in paths:
        source = source_root / path
        if source.is_file():
            (dest_root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest_root / path)


def apply_series_to_copy(entries: list[SeriesEntry], source_root: Path, scratch: Path) -> PatchReport:
    """Apply the series in order to scratch copies of the files it touches in
    source_root: a trial run that leaves source_root untouched. Stops at the
    first patch with errors, as later results would be meaningless."""
    parsed = []
    for entry in entries:
        try:
            parsed.append(parse_patch(entry.path))
        except PatchFormatError as e:
            raise ForkError(f"{entry.path}: {e}") from None
    copy_files(set().union(*(p.paths for p in parsed)), source_root, scratch)
    report = PatchReport()
    for entry in entries:
        patch_report = run_gnu_patch(entry.path, entry.name, scratch)
        report.extend(patch_report)
        if patch_report.errors:
            break
    return report


def apply_offset_policy(fork: Fork, version: str, report: PatchReport) -> PatchReport:
    """Offsets are errors on the pinned release (its patches must be exact),
    warnings on other releases (GNU patch and git both handle them)."""
    if version != fork.pinned:
        return report
    return PatchReport([], report.errors + [
        f"{offset} (offsets are errors on the pinned release {version}: refresh the patch)"
        for offset in report.offsets])


def copy_back(scratch: Path, entries: list[SeriesEntry], target_root: Path) -> None:
    """Make target_root's files touched by the series equal the trial results."""
    for path in set().union(*(parse_patch(e.path).paths for e in entries)):
        result, target = scratch / path, target_root / path
        if result.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result, target)
        elif target.is_file():
            target.unlink()  # the series deletes (or renames) it


# ---------------------------------------------------------------- scratch repos

def scratch_git_env() -> dict[str, str]:
    # No user or system config and none of the caller's GIT_* variables, so
    # hooks, signing, diff and format settings cannot change what the tool
    # writes; a fixed identity for the commits the tool makes itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    identity = {"NAME": "tools/fork.py", "EMAIL": "fork.py@localhost"}
    env.update({f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER")
                for key, value in identity.items()})
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


class ScratchRepo:
    """A git repo the tool builds: each upstream tree is a commit tagged
    upstream-VERSION on branch series-VERSION, the series one commit per patch on top."""

    def __init__(self, path: Path):
        self.path = path

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["git", *args], cwd=self.path, env=scratch_git_env(),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check and proc.returncode:
            raise ForkError(f"git {' '.join(args)} failed in {self.path}:\n"
                            f"{(proc.stdout + proc.stderr).strip()}")
        return proc

    def blob(self, commit: str, path: str) -> bytes | None:
        """The file's content at commit, None where it does not exist."""
        proc = subprocess.run(["git", "cat-file", "blob", f"{commit}:{path}"], cwd=self.path,
                              env=scratch_git_env(), capture_output=True)
        return proc.stdout if proc.returncode == 0 else None

    @classmethod
    def create(cls, path: Path, version: str, tree_root: Path) -> "ScratchRepo":
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", f"--initial-branch=series-{version}")
        repo.commit_upstream(version, tree_root)
        return repo

    def add_release(self, version: str, tree_root: Path) -> None:
        """Switch to a new branch series-VERSION whose root commit is that upstream tree."""
        self.git("switch", "-q", "--orphan", f"series-{version}")
        self.commit_upstream(version, tree_root)

    def commit_upstream(self, version: str, tree_root: Path) -> None:
        shutil.copytree(tree_root / PACKAGE_DIR, self.path / PACKAGE_DIR)
        self.git("add", "-A", "-f", PACKAGE_DIR)  # -f: upstream's own .gitignore files must not drop files
        self.git("commit", "-q", "-m", f"vllm {version} (upstream sdist)")
        self.git("tag", f"upstream-{version}")

    def am(self, version: str, entries: list[SeriesEntry], hint: str) -> None:
        """Commit each patch with `git am`; hint says what to do if one does not apply."""
        # --keep-non-patch: only "[PATCH]" is stripped from subjects, so the
        # commit messages survive a format-patch round trip byte for byte.
        am = self.git("am", "-q", "--keep-non-patch", *(str(e.path) for e in entries), check=False)
        if am.returncode:
            # Only git's error lines: its hints about `git am --continue` do
            # not apply to a repo the tool made and is about to discard.
            errors = [l for l in (am.stdout + am.stderr).splitlines()
                      if l.startswith(("Patch failed at", "error:"))]
            raise ForkError(f"the series does not apply to vllm {version} with git am ({hint}):\n"
                            + "\n".join(errors))

    def commits(self, base: str) -> list[str]:
        """The commits of base..HEAD, oldest first."""
        return self.git("rev-list", "--reverse", f"{base}..HEAD").stdout.split()

    def format_patches(self, base: str) -> list[tuple[str, bytes]]:
        """(format-patch's file name, content) of every commit in base..HEAD, oldest first."""
        with tempfile.TemporaryDirectory() as out:
            listing = self.git("-c", "core.abbrev=12", "format-patch", *FORMAT_PATCH_OPTIONS,
                               "-o", out, f"{base}..HEAD").stdout.split()
            return [(Path(p).name, Path(p).read_bytes()) for p in listing]

    def has_ref(self, ref: str) -> bool:
        return self.git("rev-parse", "--verify", "-q", ref, check=False).returncode == 0

    def cherry_pick_in_progress(self) -> bool:
        sequencer = self.git("rev-parse", "--git-path", "sequencer").stdout.strip()
        return self.has_ref("CHERRY_PICK_HEAD") or (self.path / sequencer).exists()


# ------------------------------------------------------------------- apply

def refuse_reapply(root: Path) -> None:
    record_path = root / APPLIED_RECORD
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        names = ", ".join(p["name"] for p in record["patches"]) or "no patches"
        raise ForkError(
            f"{root} already has the series applied (vllm {record['version']}: {names}; "
            f"recorded in {record_path}); applying again would patch patched files: start from a "
            f"fresh tree (remove a tree made by apply, reinstall vllm for --into)")


def write_record(root: Path, version: str, entries: list[SeriesEntry], overlay: list[str],
                 fork: Fork) -> None:
    record = {
        "version": version,
        "patches": [{"name": e.name, "file": fork.relative(e.path), "sha256": sha256_of(e.path)}
                    for e in entries],
        "overlay": overlay,
    }
    (root / APPLIED_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def copy_overlay(fork: Fork, overlay: list[str], root: Path) -> None:
    for path in overlay:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fork.root / path, root / path)


def trial_or_fail(fork: Fork, version: str, entries: list[SeriesEntry], source_root: Path,
                  scratch: Path) -> None:
    report = apply_offset_policy(fork, version, apply_series_to_copy(entries, source_root, scratch))
    for warning in report.offsets:
        print(f"warning: {warning}", file=sys.stderr)
    if report.errors:
        raise ForkError(f"the series does not apply to vllm {version} (nothing was changed):\n"
                        + "\n".join(report.errors))


def apply_into(fork: Fork, version: str, into: Path) -> None:
    """Patch an installed package root (holding vllm/) in place, then add the overlay."""
    refuse_reapply(into)
    if not (into / PACKAGE_DIR).is_dir():
        raise ForkError(f"{into} has no {PACKAGE_DIR}/ package to patch")
    entries = fork.series_for(version)
    overlay = fork.overlay_files()
    with tempfile.TemporaryDirectory() as scratch:
        trial_or_fail(fork, version, entries, into, Path(scratch))
        copy_back(Path(scratch), entries, into)
    copy_overlay(fork, overlay, into)
    write_record(into, version, entries, overlay, fork)
    print(f"applied {len(entries)} patches for vllm {version} and {len(overlay)} overlay files "
          f"to {into}")


def apply_out(fork: Fork, version: str, out: Path, as_git: bool) -> None:
    """Build a fresh tree out/vllm = upstream + series + overlay (a git repo with
    one commit per patch if as_git), in a temporary sibling dir renamed at the end."""
    refuse_reapply(out)
    if out.exists():
        raise ForkError(f"{out} exists: remove it or pick another --out")
    entries = fork.series_for(version)
    overlay = fork.overlay_files()
    tree_root = fork.upstream_tree(version)
    staging = out.with_name(f".{out.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted apply
    staging.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            trial_or_fail(fork, version, entries, tree_root, Path(scratch))
            if as_git:
                repo = ScratchRepo.create(staging, version, tree_root)
                repo.am(version, entries, "although GNU patch applies it")
                # The overlay and the record are not part of the series.
                exclude = staging / repo.git("rev-parse", "--git-path", "info/exclude").stdout.strip()
                exclude.parent.mkdir(parents=True, exist_ok=True)
                exclude.write_text(
                    "".join(f"/{p}\n" for p in [*overlay, APPLIED_RECORD]))
            else:
                shutil.copytree(tree_root / PACKAGE_DIR, staging / PACKAGE_DIR)
                copy_back(Path(scratch), entries, staging)
        copy_overlay(fork, overlay, staging)
        write_record(staging, version, entries, overlay, fork)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"applied {len(entries)} patches for vllm {version} and {len(overlay)} overlay files "
          f"to {out}{' (a git repo)' if as_git else ''}")


# ------------------------------------------------------------------- check

def patch_file_problems(fork: Fork, path: Path, overlay: set[str]) -> list[str]:
    """Header fields, trailers and touched files of one patch file."""
    shown = fork.relative(path)
    try:
        patch = parse_patch(path)
    except PatchFormatError as e:
        return [f"{shown}: not a git format-patch file: {e}"]
    problems = [f"{shown}: missing '{name.capitalize()}:' header"
                for name in ("from", "subject") if not patch.headers.get(name)]
    problems += [f"{shown}: missing '{name}:' line in the message"
                 for name in REQUIRED_TRAILERS if not patch.trailers.get(name)]
    upstream_version = patch.trailers.get("Upstream-Version")
    if upstream_version and upstream_version not in fork.releases:
        problems.append(f"{shown}: Upstream-Version {upstream_version} is not a release in "
                        f"patches/upstream.json")
    for diff in patch.files:
        for path_touched in sorted({diff.old, diff.new} - {None}):
            if path_touched in overlay:
                problems.append(f"{shown}: touches {path_touched}, a file of the fork's overlay: "
                                f"change it in the repo's {PACKAGE_DIR}/, not by a patch")
            elif not path_touched.startswith(f"{PACKAGE_DIR}/"):
                problems.append(f"{shown}: touches {path_touched}, outside the {PACKAGE_DIR}/ package")
        if diff.old is None and diff.new not in overlay:
            problems.append(f"{shown}: creates {diff.new}: files the fork adds belong in the "
                            f"overlay (the repo's {PACKAGE_DIR}/)")
    return problems


def series_layout_problems(fork: Fork) -> list[str]:
    """Every patch file listed exactly once, every listed name has a file,
    fix-up dirs only for known, non-pinned releases."""
    names = fork.series_names()
    problems = [f"patches/series lists {name} {names.count(name)} times"
                for name in sorted(set(names)) if names.count(name) > 1]
    problems += [f"patches/series lists {name} but patches/{name} does not exist"
                 for name in dict.fromkeys(names) if not (fork.patches_dir / name).is_file()]
    problems += [f"patches/{p.name} is not listed in patches/series"
                 for p in sorted(fork.patches_dir.glob("*.patch")) if p.name not in names]
    for fixup_dir in fork.fixup_dirs():
        if fixup_dir.name not in fork.releases:
            problems.append(f"patches/{fixup_dir.name}/ is a fix-up dir for a release not in "
                            f"patches/upstream.json")
        elif fixup_dir.name == fork.pinned:
            problems.append(f"patches/{fixup_dir.name}/ is a fix-up dir for the pinned release: "
                            f"refresh the base patches instead")
        problems += [f"patches/{fixup_dir.name}/{p.name} is not listed in patches/series"
                     for p in sorted(fixup_dir.glob("*.patch")) if p.name not in names]
    return problems


def series_size(fork: Fork, entries: list[SeriesEntry]) -> int:
    """Changed upstream lines (added + removed) of the base patches that parse."""
    total = 0
    for entry in entries:
        try:
            total += parse_patch(entry.path).changed_lines
        except PatchFormatError:
            pass  # reported as a problem of its own
    return total


def check(fork: Fork, versions: list[str]) -> list[str]:
    problems = series_layout_problems(fork)
    overlay = set(fork.overlay_files())
    patch_files = sorted(fork.patches_dir.glob("*.patch")) + [
        p for d in fork.fixup_dirs() for p in sorted(d.glob("*.patch"))]
    for path in patch_files:
        problems += patch_file_problems(fork, path, overlay)

    names = list(dict.fromkeys(fork.series_names()))
    listed = [SeriesEntry(n, fork.patches_dir / n) for n in names if (fork.patches_dir / n).is_file()]
    changed = series_size(fork, listed)
    print(f"series: {len(names)} patches, {changed} changed upstream lines "
          f"(budget {MAX_PATCHES} patches, {MAX_CHANGED_LINES} lines)")
    if len(names) > MAX_PATCHES:
        problems.append(f"the series has {len(names)} patches, over the budget of {MAX_PATCHES}")
    if changed > MAX_CHANGED_LINES:
        problems.append(f"the series changes {changed} upstream lines, over the budget of "
                        f"{MAX_CHANGED_LINES}")

    for version in versions:
        tree_root = fork.upstream_tree(version)
        entries = [SeriesEntry(e.name, fork.release_patch(e.name, version)) for e in listed]
        try:
            with tempfile.TemporaryDirectory() as scratch:
                report = apply_offset_policy(fork, version,
                                         apply_series_to_copy(entries, tree_root, Path(scratch)))
        except ForkError as e:  # an unparseable patch, already reported above
            problems.append(f"vllm {version}: applying not tried: {e}")
            continue
        for warning in report.offsets:
            print(f"warning: vllm {version}: {warning}")
        problems += [f"vllm {version}: {error}" for error in report.errors]
        problems += [f"vllm {version}: overlay file {path} replaces an upstream file: "
                     f"change upstream files with a patch" for path in sorted(overlay)
                     if (tree_root / path).exists()]
    return problems


# ------------------------------------------------------------- rebase, refresh

def replay_base_patch(repo: ScratchRepo, entry: SeriesEntry, commit: str) -> PatchReport:
    """Does the base patch, applied by GNU patch to commit's parent, give
    exactly commit's files? Returns GNU patch's report, with an error if not."""
    parent = f"{commit}^"
    changed_by_commit = repo.git("diff", "--name-only", "--no-renames", "-z", parent, commit).stdout
    paths = parse_patch(entry.path).paths | {p for p in changed_by_commit.split("\0") if p}
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            content = repo.blob(parent, path)
            if content is not None:
                (Path(scratch) / path).parent.mkdir(parents=True, exist_ok=True)
                (Path(scratch) / path).write_bytes(content)
        report = run_gnu_patch(entry.path, entry.name, Path(scratch))
        if not report.errors:
            differing = [p for p in sorted(paths) if repo.blob(commit, p) != (
                (Path(scratch) / p).read_bytes() if (Path(scratch) / p).is_file() else None)]
            if differing:
                report.errors.append(f"patch {entry.name}: GNU patch gives other content than "
                                     f"git in {', '.join(differing)}")
    return report


def write_fixups(fork: Fork, repo: ScratchRepo, version: str) -> list[str]:
    """For a non-pinned release: write patches/VERSION/NAME for each commit of
    upstream-VERSION..HEAD that its base patch does not reproduce (and delete
    fix-ups no longer needed). Returns the names written."""
    entries = fork.base_series()
    commits = repo.commits(f"upstream-{version}")
    if len(commits) != len(entries):
        raise ForkError(f"{repo.path} has {len(commits)} commits on upstream-{version} but "
                        f"patches/series lists {len(entries)} patches; new patches are added "
                        f"on the pinned release {fork.pinned}")
    fixup_dir = fork.patches_dir / version
    written = []
    for entry, commit, (_, content) in zip(entries, commits, repo.format_patches(f"upstream-{version}")):
        report = replay_base_patch(repo, entry, commit)
        fixup = fixup_dir / entry.name
        if report.errors:
            fixup_dir.mkdir(exist_ok=True)
            fixup.write_bytes(content)
            written.append(entry.name)
        else:
            for offset in report.offsets:
                print(f"warning: vllm {version}: {offset}", file=sys.stderr)
            fixup.unlink(missing_ok=True)
    if fixup_dir.is_dir() and not any(fixup_dir.iterdir()):
        fixup_dir.rmdir()
    return written


def report_fixups(fork: Fork, version: str, written: list[str]) -> None:
    if written:
        for name in written:
            print(f"wrote {fork.relative(fork.patches_dir / version / name)}")
    else:
        print(f"no fix-ups needed for vllm {version}: the base series applies")


def rebase(fork: Fork, version: str) -> None:
    """Carry the series from the pinned release to `version` with cherry-pick."""
    if version == fork.pinned:
        raise ForkError(f"{version} is the pinned release: nothing to rebase onto")
    scratch = fork.build_dir / f"rebase-{version}"
    if scratch.exists():
        raise ForkError(f"{scratch} exists (an earlier rebase): finish it there and run refresh, "
                        f"or remove it")
    entries = fork.base_series()
    pinned_tree, target_tree = fork.upstream_tree(fork.pinned), fork.upstream_tree(version)
    try:
        repo = ScratchRepo.create(scratch, fork.pinned, pinned_tree)
        repo.am(fork.pinned, entries, "run tools/fork.py check")
        series_commits = repo.commits(f"upstream-{fork.pinned}")
        repo.add_release(version, target_tree)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)  # nothing worth keeping before the cherry-pick
        raise
    pick = repo.git("cherry-pick", f"upstream-{fork.pinned}..series-{fork.pinned}", check=False)
    if pick.returncode:
        stopped_at = repo.git("rev-parse", "--verify", "-q", "CHERRY_PICK_HEAD", check=False).stdout.strip()
        name = (entries[series_commits.index(stopped_at)].name if stopped_at in series_commits
                else "(unknown)")
        conflicts = repo.git("diff", "--name-only", "--diff-filter=U").stdout.split()
        what = ("conflicts in:\n" + "".join(f"  {path}\n" for path in conflicts) if conflicts
                else f"did not apply:\n{(pick.stdout + pick.stderr).strip()}\n")
        raise ForkError(
            f"rebase onto vllm {version} stopped: patch {name} {what}"
            f"scratch repo: {scratch} (branch series-{version})\n"
            f"to continue:\n"
            f"  cd {scratch}\n"
            f"  resolve the conflicts, `git add` the files, `git cherry-pick --continue` "
            f"(repeat for later patches)\n"
            f"  tools/fork.py refresh --from {scratch} --version {version}")
    report_fixups(fork, version, write_fixups(fork, repo, version))
    print(f"scratch repo: {scratch}")


def default_refresh_repo(fork: Fork, version: str) -> Path:
    candidates = [p for p in (fork.build_dir / f"tree-{version}", fork.build_dir / f"rebase-{version}")
                  if (p / ".git").is_dir()]
    if len(candidates) != 1:
        found = " and ".join(map(str, candidates)) or "neither build/tree-V (apply --git) nor build/rebase-V"
        raise ForkError(f"no single scratch repo for vllm {version} ({found}): pass --from")
    return candidates[0]


def refresh(fork: Fork, repo_path: Path, version: str) -> None:
    """Regenerate patch files from the commits on upstream-VERSION in a git repo."""
    repo = ScratchRepo(repo_path)
    base = f"upstream-{version}"
    if not (repo_path / ".git").exists() or not repo.has_ref(base):
        raise ForkError(f"{repo_path} is not a repo made by `apply --git` or `rebase` for vllm "
                        f"{version} (no tag {base})")
    if repo.git("merge-base", "--is-ancestor", base, "HEAD", check=False).returncode:
        raise ForkError(f"HEAD of {repo_path} is not on {base}: check out the branch series-{version}")
    if repo.cherry_pick_in_progress():
        raise ForkError(f"a cherry-pick is in progress in {repo_path}: finish it "
                        f"(git cherry-pick --continue) first")
    if repo.git("status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise ForkError(f"{repo_path} has uncommitted changes: commit them first")
    if version != fork.pinned:
        report_fixups(fork, version, write_fixups(fork, repo, version))
        return
    entries = fork.base_series()
    generated = repo.format_patches(base)
    if len(generated) < len(entries):
        raise ForkError(f"{repo_path} has {len(generated)} commits on {base} but patches/series "
                        f"lists {len(entries)} patches: remove dropped patches from patches/series")
    changed = 0
    for entry, (_, content) in zip(entries, generated):
        if entry.path.read_bytes() != content:
            entry.path.write_bytes(content)
            changed += 1
    numbers = [int(m[1]) for e in entries if (m := re.match(r"(\d+)-", e.name))]
    new_names = []
    for number, (generated_name, content) in enumerate(generated[len(entries):], max(numbers, default=0) + 1):
        name = f"{number:04d}-{generated_name.split('-', 1)[1]}"
        (fork.patches_dir / name).write_bytes(content)
        new_names.append(name)
    if new_names:
        series = fork.patches_dir / "series"
        text = series.read_text()
        series.write_text(text + ("" if text.endswith("\n") or not text else "\n")
                          + "".join(f"{name}\n" for name in new_names))
    print(f"refreshed {len(entries)} patches from {repo_path} ({changed} changed)")
    for name in new_names:
        print(f"added patches/{name} to patches/series")


def range_diff(fork: Fork, version_a: str, version_b: str) -> str:
    """git range-diff between the series applied on two releases."""
    if version_a == version_b:
        raise ForkError("range-diff needs two different releases")
    with tempfile.TemporaryDirectory() as tmp:
        repo = ScratchRepo.create(Path(tmp), version_a, fork.upstream_tree(version_a))
        repo.am(version_a, fork.series_for(version_a), f"run tools/fork.py rebase {version_a}")
        repo.add_release(version_b, fork.upstream_tree(version_b))
        repo.am(version_b, fork.series_for(version_b), f"run tools/fork.py rebase {version_b}")
        return repo.git("range-diff", "--no-color", f"upstream-{version_a}..series-{version_a}",
                        f"upstream-{version_b}..series-{version_b}").stdout


# ------------------------------------------------------------------- status

def status(fork: Fork) -> None:
    print(f"pinned: {fork.package} {fork.pinned}")
    names = fork.series_names()
    overlay = fork.overlay_files()
    lines, total = [], 0
    for name in names:
        path = fork.patches_dir / name
        fixups = [d.name for d in fork.fixup_dirs() if (d / name).is_file()]
        note = f"  fix-ups: {', '.join(fixups)}" if fixups else ""
        if not path.is_file():
            lines.append(f"  {name}  (no such file){note}")
            continue
        try:
            patch = parse_patch(path)
        except PatchFormatError as e:
            lines.append(f"  {name}  (not a format-patch file: {e}){note}")
            continue
        total += patch.changed_lines
        lines.append(f"  {name}  +{patch.added} -{patch.removed}{note}")
    print(f"series: {len(names)} patches, {total} changed upstream lines "
          f"(budget {MAX_PATCHES} patches, {MAX_CHANGED_LINES} lines)")
    print("\n".join(lines) if lines else "  (empty)")
    print(f"overlay: {len(overlay)} files under {PACKAGE_DIR}/")
    print(f"cache: {fork.cache_dir}")
    for version in fork.releases:
        sdist = fork.sdist_path(version)
        state = [f"sdist {sdist.stat().st_size / 1e6:.1f} MB" if sdist.is_file() else "no sdist",
                 "tree extracted" if (fork.tree_root(version) / PACKAGE_DIR).is_dir() else "no tree"]
        pinned = " (pinned)" if version == fork.pinned else ""
        print(f"  {version}{pinned}: {', '.join(state)}")


# ---------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tools/fork.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repo", type=Path, metavar="DIR", default=Path(os.environ.get("CUSTOM_FP8_REPO") or TOOL_ROOT),
        help="the fork's repo root (default: $CUSTOM_FP8_REPO, else the repo holding this tool)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    version_arg = dict(type=check_version_name, metavar="VERSION")

    fetch = commands.add_parser(
        "fetch", help="download, verify and unpack an upstream release",
        description="Get the vllm sdist of VERSION (default: the pinned release) from the cache "
                    "($CUSTOM_FP8_CACHE, default <repo>/.cache/upstream) or download it (URL from "
                    "patches/upstream.json, else from PyPI's JSON simple API), verify its sha256, "
                    "extract only its vllm/ package as <cache>/vllm-VERSION/vllm/ and print that path.")
    fetch.add_argument("version", nargs="?", help="release (default: the pinned one)", **version_arg)

    apply = commands.add_parser(
        "apply", help="materialize upstream + patches + overlay",
        description="Apply the series (with the release's fix-ups from patches/VERSION/) with GNU "
                    "patch, no fuzz; offsets are errors on the pinned release, warnings on others. "
                    "A trial run on copies comes first, so a failure changes nothing. Then copy "
                    "the overlay (the repo's vllm/ files) and record what was applied in "
                    f"{APPLIED_RECORD}; a second apply to the same dir is refused.")
    apply.add_argument("--version", help="upstream release (default: the pinned one)", **version_arg)
    target = apply.add_mutually_exclusive_group()
    target.add_argument("--out", type=Path, metavar="DIR",
                        help="build a fresh tree DIR/vllm/ (default: <repo>/build/tree-VERSION)")
    target.add_argument("--into", type=Path, metavar="DIR",
                        help="patch an installed package in place: DIR holds vllm/ (e.g. a "
                             "site-packages dir)")
    apply.add_argument("--git", action="store_true",
                       help="make the out dir a git repo: one commit for upstream (tag "
                            "upstream-VERSION), one per patch, for editing and `refresh` (not "
                            "with --into)")

    check_parser = commands.add_parser(
        "check", help="validate the series (layout, headers, budget, applies)",
        description="Check that every patch file is listed in patches/series exactly once and "
                    "every entry has a file; each patch is a git format-patch file with From:, "
                    "Subject: and Why:, Upstream-Version:, Forwarded: lines, touches no overlay "
                    "file and creates no file; fix-up dirs are for listed, non-pinned releases; "
                    f"the series is within budget ({MAX_PATCHES} patches, {MAX_CHANGED_LINES} "
                    "changed lines); and it applies in order without fuzz (and on the pinned "
                    "release without offset) to each release checked, where no overlay file "
                    "shadows an upstream file. Prints one line per problem; exit status 1 if any.")
    versions = check_parser.add_mutually_exclusive_group()
    versions.add_argument("--version", action="append", dest="versions",
                          help="release to apply to (repeatable; default: the pinned one)",
                          **version_arg)
    versions.add_argument("--all", action="store_true",
                          help="apply to every release in patches/upstream.json")

    rebase_parser = commands.add_parser(
        "rebase", help="carry the series to another release (git cherry-pick)",
        description="In a scratch repo <repo>/build/rebase-VERSION: commit the pinned upstream "
                    "tree, `git am` the series, then cherry-pick its commits onto VERSION's "
                    "upstream tree. On a conflict, stop and say how to resolve and continue. On "
                    "success, write into patches/VERSION/ the refreshed patches whose base patch, "
                    "applied by GNU patch (no fuzz, offsets allowed), does not give the rebased "
                    "commit; if there are none, say 'no fix-ups needed'.")
    rebase_parser.add_argument("version", help="the release to carry the series to", **version_arg)

    refresh_parser = commands.add_parser(
        "refresh", help="regenerate patch files from a git repo",
        description="Regenerate the patch files (git format-patch --zero-commit --no-signature "
                    "--no-stat, series file names kept) from the commits on tag upstream-VERSION "
                    "in a repo made by `apply --git` or `rebase`. For the pinned release it "
                    "rewrites patches/ (commits beyond the series become new patches, appended to "
                    "patches/series); for another release it writes patches/VERSION/ fix-ups for "
                    "the patches whose base version does not reproduce the commit.")
    refresh_parser.add_argument("--from", dest="from_repo", type=Path, metavar="GITREPO",
                                help="the repo (default: build/tree-VERSION or build/rebase-VERSION, "
                                     "whichever is a git repo; pass --from if both are)")
    refresh_parser.add_argument("--version", help="release (default: the pinned one)", **version_arg)

    range_diff_parser = commands.add_parser(
        "range-diff", help="show how each patch differs between two releases",
        description="git range-diff between the series (with fix-ups) applied on VERSION_A and "
                    "on VERSION_B, built in a temporary scratch repo.")
    range_diff_parser.add_argument("version_a", type=check_version_name, metavar="VERSION_A")
    range_diff_parser.add_argument("version_b", type=check_version_name, metavar="VERSION_B")

    commands.add_parser("status", help="pinned release, series, cache state",
                        description="Show the pinned release, the series with each patch's "
                                    "changed lines and fix-ups, the overlay size and the cache.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fork = Fork(args.repo.resolve())
        if args.command == "fetch":
            print(fork.upstream_tree(args.version or fork.pinned) / PACKAGE_DIR)
        elif args.command == "apply":
            version = args.version or fork.pinned
            if args.into:
                if args.git:
                    raise ForkError("--git makes a fresh tree: it does not go with --into")
                apply_into(fork, version, args.into.resolve())
            else:
                apply_out(fork, version, (args.out or fork.build_dir / f"tree-{version}").resolve(),
                          args.git)
        elif args.command == "check":
            versions = list(fork.releases) if args.all else args.versions or [fork.pinned]
            problems = check(fork, versions)
            for problem in problems:
                print(problem)
            print(f"check: {len(problems)} problem{'s' if len(problems) > 1 else ''}" if problems
                  else f"check: ok (applies to vllm {', '.join(versions)})")
            return 1 if problems else 0
        elif args.command == "rebase":
            rebase(fork, args.version)
        elif args.command == "refresh":
            version = args.version or fork.pinned
            refresh(fork, (args.from_repo or default_refresh_repo(fork, version)).resolve(), version)
        elif args.command == "range-diff":
            print(range_diff(fork, args.version_a, args.version_b), end="")
        elif args.command == "status":
            status(fork)
    except ForkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
