"""The spec as it was at a git revision, written out so that it can be synthesized like the working copy.

``git show REV:<spec>`` gives the file. The folders it points at (``model.artifact.path``,
``container.build``) are taken from the revision too when git tracks them there: ``git archive REV
<folder>`` extracts them into the plan's scratch folder, so a changed Dockerfile or server module shows
as a new image. A folder that is not tracked at the revision (the sample model is a build output under
``build/``), lies outside the repository, or holds Git LFS pointers instead of content is taken from the
working tree for both sides, and the plan says so. Drift monitoring's reference datasets (files) are
taken the same way (``git show REV:<file>``). The base spec is written with those paths as absolute
paths; nothing in the repository or its ``.git`` changes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..spec import DeploymentSpec, SpecError, SpecIssue, parse_spec
from ..spec.errors import MISSING

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


class PlanInputError(Exception):
    """The plan cannot be made from what was given (exit code 2): unknown revision, no repository,
    a spec file missing at the revision."""


@dataclass(frozen=True)
class FolderSource:
    """Where one folder a spec points at comes from, on the base side."""

    field: str
    """The spec field, e.g. ``container.build``."""
    path: str
    """The value written in the base spec."""
    from_revision: bool
    """True: extracted from the revision; False: the working tree's folder."""
    reason: str
    """Why, in a few words (``tracked at main``, ``not tracked at main``, ``outside the repository``)."""


@dataclass(frozen=True)
class BaseRevision:
    """The spec at a revision, ready to synthesize."""

    revision: str
    """The revision as the user wrote it."""
    commit: str
    """Its full commit id."""
    spec: DeploymentSpec
    """The validated spec at the revision."""
    spec_path: Path
    """The spec written out in the scratch folder (its folders as absolute paths)."""
    label: str
    """``REV:path/in/repo.yaml``: how errors and the report name the file."""
    folders: tuple[FolderSource, ...]
    """Where the model folder and the build context come from."""


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary, check=False)


def _repository_of(path: Path) -> Path:
    found = _git(path.parent, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise PlanInputError(f"{path}: not inside a git repository, so there is no revision to compare with")
    return Path(found.stdout.strip()).resolve()


def read_base(revision: str, spec_path: Path, scratch: Path, project_root: Path) -> BaseRevision:
    """Read ``spec_path`` (the working copy's spec file) as it was at ``revision`` and write it to
    ``scratch``. Raises :class:`PlanInputError` or :class:`~twinserve.spec.SpecError`."""
    spec_path = spec_path.resolve()
    repo = _repository_of(spec_path)
    resolved = _git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if resolved.returncode != 0:
        raise PlanInputError(f"--base {revision}: not a commit in {repo} (git rev-parse found nothing)")
    commit = resolved.stdout.strip()
    relative = spec_path.relative_to(repo).as_posix()
    shown = _git(repo, "show", f"{commit}:{relative}")
    if shown.returncode != 0:
        raise PlanInputError(f"{relative} does not exist at {revision} ({commit[:12]})")
    label = f"{revision}:{relative}"
    try:
        raw = yaml.safe_load(shown.stdout)
    except yaml.YAMLError as exc:
        raise SpecError(label, [SpecIssue("(file)", MISSING, f"not valid YAML: {exc}")]) from None
    parse_spec(raw, file=label)  # errors name REV:path, as `twinserve validate` names the file

    folders = []
    tree = scratch / "tree"
    for field, node, key in (
        ("model.artifact.path", raw["model"]["artifact"], "path"),
        ("container.build", raw["container"], "build"),
    ):
        if node.get(key):
            source = _materialize(repo, commit, revision, spec_path.parent, node[key], tree, field)
            node[key] = source.path
            folders.append(source)

    # Reference datasets of drift monitoring: one file each, wherever the spec sets one.
    sections = [("defaults", raw.get("defaults") or {})]
    sections += [(f"environments.{name}", env or {}) for name, env in (raw.get("environments") or {}).items()]
    for at, section in sections:
        monitoring = section.get("monitoring") or {}
        if monitoring.get("reference_dataset"):
            source = _materialize_file(
                repo,
                commit,
                revision,
                spec_path.parent,
                monitoring["reference_dataset"],
                tree,
                f"{at}.monitoring.reference_dataset",
            )
            monitoring["reference_dataset"] = source.path
            folders.append(source)

    # Placed where the working copy's spec sits relative to the project root, beside a copy of
    # cdk.json: the pipeline stack names the spec by its path from there (stacks/aws/app.py).
    try:
        mirrored = scratch / "spec" / spec_path.relative_to(project_root.resolve())
        (scratch / "spec").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_root / "cdk.json", scratch / "spec" / "cdk.json")
    except ValueError:
        mirrored = scratch / "spec" / spec_path.name
    mirrored.parent.mkdir(parents=True, exist_ok=True)
    mirrored.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = parse_spec(raw, file=label)  # again: the folders are absolute paths now
    return BaseRevision(revision, commit, spec, mirrored, label, tuple(folders))


def _materialize(
    repo: Path, commit: str, revision: str, spec_dir: Path, value: str, tree: Path, field: str
) -> FolderSource:
    working = (spec_dir / value).resolve()
    try:
        inside = working.relative_to(repo).as_posix()
    except ValueError:
        return FolderSource(field, str(working), False, "outside the repository")
    listed = _git(repo, "ls-tree", "-d", "--name-only", commit, "--", inside)
    if listed.returncode != 0 or not listed.stdout.strip():
        return FolderSource(field, str(working), False, f"not tracked at {revision}")
    archive = _git(repo, "archive", "--format=tar", commit, "--", inside, binary=True)
    if archive.returncode != 0:
        raise PlanInputError(f"git archive {revision} {inside} failed: {archive.stderr.decode(errors='replace')}")
    target = tree / inside
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if any(_is_lfs_pointer(tar, member) for member in tar.getmembers()):
            return FolderSource(field, str(working), False, f"Git LFS files at {revision}")
        tar.extractall(tree, filter="data")
    return FolderSource(field, str(target), True, f"tracked at {revision}")


def _materialize_file(
    repo: Path, commit: str, revision: str, spec_dir: Path, value: str, tree: Path, field: str
) -> FolderSource:
    """One tracked file from the revision (``git show``), else the working tree's, as for folders."""
    working = (spec_dir / value).resolve()
    try:
        inside = working.relative_to(repo).as_posix()
    except ValueError:
        return FolderSource(field, str(working), False, "outside the repository")
    shown = _git(repo, "show", f"{commit}:{inside}", binary=True)
    if shown.returncode != 0:
        return FolderSource(field, str(working), False, f"not tracked at {revision}")
    if shown.stdout.startswith(LFS_POINTER):
        return FolderSource(field, str(working), False, f"a Git LFS file at {revision}")
    target = tree / inside
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(shown.stdout)
    return FolderSource(field, str(target), True, f"tracked at {revision}")


def _is_lfs_pointer(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bool:
    if not member.isfile() or member.size > 1024:
        return False
    handle = tar.extractfile(member)
    return handle is not None and handle.read(len(LFS_POINTER)) == LFS_POINTER
