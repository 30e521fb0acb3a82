"""Git facts of a release, read with read-only git commands: the commit, the tags on HEAD (version candidates),
the origin as ``org.opencontainers.image.source``, the commit time (``created``, and ``SOURCE_DATE_EPOCH``: the clock
is never read) and the paths changed outside ``bake_dir`` (a dirty tree is refused unless allowed)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bakery.errors import BakeryError, CommandError
from bakery.process import Runner


@dataclass(frozen=True)
class GitInfo:
    """What a release takes from git."""

    sha: str
    head_tags: tuple[str, ...]         # every tag on HEAD (semver ones are candidates for the version)
    source: str | None                 # origin URL without credentials, https form
    epoch: int                         # commit time, seconds since the epoch
    dirty: tuple[str, ...]             # changed/untracked paths outside bake_dir

    @property
    def created(self) -> str:
        return created_from_epoch(self.epoch)


def created_from_epoch(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_porcelain(text: str) -> list[str]:
    """Paths from ``git status --porcelain -z`` (renames and copies give the new path)."""
    out: list[str] = []
    records = text.split("\0")
    i = 0
    while i < len(records):
        rec = records[i]
        i += 1
        if len(rec) < 4:
            continue
        out.append(rec[3:])
        if rec[0] in "RC":
            i += 1        # the original path follows as its own record
    return out


_SCP = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


def normalize_source(url: str) -> str | None:
    """The repository URL for ``org.opencontainers.image.source``: user info, query and fragment removed (a token
    in any of them is never published), ssh/scp forms as https, no ``.git`` suffix. Local paths give None."""
    url = url.strip()
    if not url:
        return None
    if m := _SCP.match(url):
        host, path = m.group(1), m.group(2)
        url = f"https://{host}/{path.lstrip('/')}"
    elif url.startswith("ssh://"):
        rest = url[len("ssh://"):]
        rest = rest.split("@", 1)[-1]
        host, _, path = rest.partition("/")
        url = f"https://{host.split(':')[0]}/{path}"
    elif re.match(r"^(https?|git)://", url):
        scheme, rest = url.split("://", 1)
        hostpart, slash, path = rest.partition("/")
        url = f"{'https' if scheme == 'git' else scheme}://{hostpart.rsplit('@', 1)[-1]}{slash}{path}"
    else:
        return None
    url = url.split("#", 1)[0].split("?", 1)[0]
    return url.removesuffix("/").removesuffix(".git")


@dataclass(frozen=True)
class Checkout:
    """What any build takes from the checkout it runs in (:func:`checkout`)."""

    sha: str
    branch: str                        # "" when HEAD is detached
    head_tags: tuple[str, ...]
    source: str | None                 # origin URL without credentials, https form
    default_branch: str                # origin's HEAD branch, when the clone knows it
    epoch: int                         # commit time, seconds since the epoch


def _reader(runner: Runner, root: Path) -> Callable[..., str | None]:
    """``git ARGS`` in ``root``: its stripped stdout, or None when git fails (or is not there)."""
    def git(*args: str) -> str | None:
        try:
            proc = runner.run(["git", *args], cwd=root, check=False)
        except CommandError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None
    return git


def checkout(runner: Runner, root: Path) -> Checkout | None:
    """The checkout's commit, branch, tags on HEAD, origin, default branch and commit time; None outside a git
    checkout or before its first commit (read-only git commands)."""
    git = _reader(runner, root)
    sha = git("rev-parse", "--verify", "-q", "HEAD")
    if not sha:
        return None
    origin = git("remote", "get-url", "origin")
    epoch = git("log", "-1", "--format=%ct", sha) or ""
    default = (git("symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD") or "").removeprefix("origin/")
    return Checkout(sha, git("symbolic-ref", "-q", "--short", "HEAD") or "",
                    tuple((git("tag", "--points-at", "HEAD") or "").split()),
                    normalize_source(origin) if origin else None, default, int(epoch) if epoch.isdigit() else 0)


def commit_facts(runner: Runner, root: Path) -> tuple[str, int, str | None] | None:
    """HEAD's commit, its commit time and the origin's URL (normalized), with two read-only git commands; None
    outside a git checkout or before its first commit."""
    git = _reader(runner, root)
    head = (git("log", "-1", "--format=%H %ct", "HEAD") or "").split()
    if len(head) != 2 or not head[1].isdigit():
        return None
    origin = git("remote", "get-url", "origin")
    return head[0], int(head[1]), normalize_source(origin) if origin else None


def git_info(runner: Runner, root: Path, bake_dir: str) -> GitInfo:
    """Read commit, tags on HEAD, origin, commit time and working-tree state (read-only git commands)."""
    def git(*args: str, check: bool = True) -> str:
        return runner.run(["git", *args], cwd=root, check=check).stdout

    try:
        top = Path(git("rev-parse", "--show-toplevel").strip())
    except CommandError as exc:
        raise BakeryError(f"release needs a git checkout (for the version, revision and created time): "
                          f"{root} is not in a git repository ({exc})") from None
    try:
        sha = git("rev-parse", "--verify", "HEAD").strip()
    except CommandError:
        raise BakeryError(f"{top}: HEAD has no commit yet; commit, tag (git tag v1.0.0) and release") from None
    epoch = int(git("log", "-1", "--format=%ct", "HEAD").strip())
    head_tags = tuple(t for t in git("tag", "--points-at", "HEAD").split() if t)
    origin = runner.run(["git", "remote", "get-url", "origin"], cwd=root, check=False)
    source = normalize_source(origin.stdout) if origin.returncode == 0 else None
    bake = (root / bake_dir).resolve()
    dirty = tuple(p for p in parse_porcelain(git("status", "--porcelain", "-z", "--untracked-files=normal"))
                  if not _inside((top / p).resolve(), bake))
    return GitInfo(sha, head_tags, source, epoch, dirty)


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents
