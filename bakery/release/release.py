"""Releases: publish one version of every image as a set of tags on ONE multi-arch index, only after every
platform of every image passed its smoke test.

Steps (``release``):

1. **plan**: version (``--version`` or the newest semver tag on HEAD), commit, source, created (the commit
   time), the tag set per image (:func:`plan_tags`: metadata-action rules from :mod:`bakery.release.tags`, and floating
   tags ``X.Y``/``X``/``latest`` never moved back to an older version), the previous release of each image;
2. **build**: ``docker buildx bake --push`` of the per-group targets under the version's per-group refs
   (``api:1.4.2-amd64``), with OCI labels/annotations and ``SOURCE_DATE_EPOCH`` = commit time in a bake overlay;
   no public tag is touched;
3. **smoke**: per image and platform, ``docker run --pull always --platform P <repo>@<platform digest>`` with the
   image's ``test`` command (as entrypoint), or a start check without one; every run, output labelled
   ``[image platform]``;
4. **publish** (only when 1-3 passed for everything): per image ONE index stitched from the group results by
   digest (attestations kept or dropped, never dangling), PUT under every tag of the set; a tag that fails to
   move rolls every tag moved by this run back;
5. **report**: ``bake/release-<version>.json`` and ``bake/release.json``: tags, index digest, per platform
   digest, compressed size (sum of layer sizes), smoke result, size change against the previous release.

Re-running a release is idempotent: when the version tag already holds this commit's release (:func:`already_released`:
same version/revision/source/created annotations, the image's platforms, the attestation policy), the image is not
rebuilt and that index is published again as it is. With ``--rebuild``, an index whose images are unchanged is
kept too (:func:`reusable`); only provenance attestations of a rebuild differ (a new build id and timestamps), and
they are not allowed to change the digest.

The pure parts (settings, tag planning, overlay, smoke argv, reuse check, size comparison, report) take data and
return data; :func:`release` sequences them with git, docker and the registry. The clock is never read.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from bakery.build import bakefile
from bakery.atomic import write_files
from bakery.config.variables import VAR_REGISTRY
from bakery.build.build import BuildRequest, build
from bakery.config.variables import bake_variables
from bakery.oci.registry import registry_for
from bakery.config.model import Config, suggest, target_name
from bakery.config.validate import Validator, validator_for
from bakery.humanize import human_bytes
from bakery.docker import Docker
from bakery.errors import BakeryError, CommandError, ConfigErrors, RegistryError
from bakery.manifest.drafts import (ATTESTATION_MODES, attestation_of, check_platforms, entry_platform, index_bytes,
                       layer_bytes, select_entries, short, untag)
from bakery.process import Runner
from bakery.oci.registry import OCI_INDEX, Manifest, Registry, digest_of
from bakery.oci.index import config_platform, index_entries, is_attestation, read_config
from bakery.release.tags import TagError, TagOptions, Version, compute_tags, newest_version, oci_labels, parse_version, sanitize_tag

RELEASE_KEYS = ("tags", "attestations", "size_growth_warn", "smoke")
TAG_KEYS = ("latest", "major_zero", "prefix", "suffix", "prefix_on_latest", "suffix_on_latest", "sha", "sha_length",
            "sha_prefix", "raw", "floating")
SMOKE_KEYS = ("timeout", "start_seconds")
FLOATING = ("forward", "always")
REPORT_LATEST = "release.json"
OCI_KEYS = ("org.opencontainers.image.version", "org.opencontainers.image.revision",
            "org.opencontainers.image.source", "org.opencontainers.image.created")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ReleaseSettings:
    """``release:`` in bakery.yaml."""

    tags: TagOptions = TagOptions()
    floating: str = "forward"          # forward: X.Y, X and latest never move to an older version; always
    attestations: str = "keep"         # keep: carry attestation manifests into the index; drop: leave them out
    size_growth_warn: float | None = 0.10   # warn when a platform grows more than this since the previous release
    test_timeout: float = 300.0        # seconds a smoke test may run (emulated platforms are slow)
    start_seconds: float = 5.0         # start check: a container still running after this long has started


def settings(config: Config) -> ReleaseSettings:
    """Parse ``release:`` from the merged document; every problem is one line naming file, line and key."""
    raw = (config.raw or {}).get("release")
    v = validator_for(config)
    data = v.mapping(raw, "release", RELEASE_KEYS)
    tags = v.mapping(data.get("tags"), "release.tags", TAG_KEYS)
    smoke = v.mapping(data.get("smoke"), "release.smoke", SMOKE_KEYS)
    d = ReleaseSettings()
    dt = TagOptions()

    def flag(value: Any, key: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            v.err(key, f"expected true or false, got {value!r}")
            return default
        return value

    latest: Any = tags.get("latest", dt.latest)
    if latest not in (True, False, "auto"):
        v.err("release.tags.latest", f"{latest!r} is not auto, true or false")
        latest = dt.latest
    sha_length = tags.get("sha_length", dt.sha_length)
    if isinstance(sha_length, bool) or not isinstance(sha_length, int) or not 1 <= sha_length <= 40:
        v.err("release.tags.sha_length", f"expected a number of hex digits from 1 to 40, got {sha_length!r}")
        sha_length = dt.sha_length
    raw_tags = v.string_list(tags.get("raw"), "release.tags.raw")
    for i, t in enumerate(raw_tags):
        try:
            sanitize_tag(t)
        except TagError as exc:
            v.err(f"release.tags.raw[{i}]", str(exc))
    texts = {}
    for key, default in (("prefix", dt.prefix), ("suffix", dt.suffix), ("sha_prefix", dt.sha_prefix)):
        value = tags.get(key)
        texts[key] = default if value is None else (v.string(value, f"release.tags.{key}") or "")
    try:
        sanitize_tag(f"{texts['prefix']}0.0.0{texts['suffix']}")
        sanitize_tag(f"{texts['sha_prefix']}0000000")
    except TagError as exc:
        v.err("release.tags", f"prefix/suffix/sha_prefix give no valid tag: {exc}")
    floating = v.choice(tags.get("floating"), "release.tags.floating", FLOATING, d.floating)
    attestations = v.choice(data.get("attestations"), "release.attestations", ATTESTATION_MODES, d.attestations)
    growth = _fraction(v, data.get("size_growth_warn", d.size_growth_warn), "release.size_growth_warn")
    timeout = _seconds(v, smoke.get("timeout"), "release.smoke.timeout", d.test_timeout)
    start = _seconds(v, smoke.get("start_seconds"), "release.smoke.start_seconds", d.start_seconds)
    options = TagOptions(latest=latest, major_zero=flag(tags.get("major_zero"), "release.tags.major_zero", False),
                         prefix=texts["prefix"], suffix=texts["suffix"],
                         prefix_on_latest=flag(tags.get("prefix_on_latest"), "release.tags.prefix_on_latest", False),
                         suffix_on_latest=flag(tags.get("suffix_on_latest"), "release.tags.suffix_on_latest", False),
                         sha=flag(tags.get("sha"), "release.tags.sha", True), sha_length=sha_length,
                         sha_prefix=texts["sha_prefix"], raw=tuple(raw_tags))
    if v.errors:
        raise ConfigErrors(v.errors)
    return ReleaseSettings(options, floating, attestations, growth, timeout, start)


def _fraction(v: Validator, value: Any, key: str) -> float | None:
    if value in (None, False):
        return None
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or number < 0:
        v.err(key, f"expected a fraction such as 0.10 or a percentage such as 10%, got {value!r}")
        return None
    return number


def _seconds(v: Validator, value: Any, key: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        v.err(key, f"expected a positive number of seconds, got {value!r}")
        return default
    return float(value)


# --------------------------------------------------------------------------- git facts
@dataclass(frozen=True)
class GitInfo:
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
    """The repository URL for ``org.opencontainers.image.source``: credentials removed, ssh/scp forms as https,
    no ``.git`` suffix. Local paths give None."""
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
    return url.removesuffix("/").removesuffix(".git")


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


def resolve_version(requested: str | None, head_tags: Sequence[str]) -> tuple[Version, str]:
    """The version to release and where it came from (a line for the output)."""
    on_head = newest_version(head_tags)
    if requested:
        version = parse_version(requested)
        if on_head is not None and on_head != version:
            return version, f"--version {version} (note: HEAD is tagged {on_head.raw})"
        return version, f"--version {version}"
    if on_head is None:
        raise BakeryError("no version to release: HEAD has no semver tag (git tag v1.2.3) and --version was not "
                          "given")
    return on_head, f"tag {on_head.raw} on HEAD"


# --------------------------------------------------------------------------- tags
@dataclass(frozen=True)
class TagPlan:
    tags: tuple[str, ...]
    held: tuple[tuple[str, str], ...] = ()     # floating tags left where they are: (tag, why)


def plan_tags(version: Version, sha: str | None, options: TagOptions, published: Iterable[Version] = (),
              floating: str = "forward") -> TagPlan:
    """The tag set for ``version`` (metadata-action rules), minus floating tags that would move BACK.

    With ``floating: forward``, ``X.Y`` is held when a newer ``X.Y.z`` release is published, ``X`` when a newer
    ``X.y.z`` is, and ``latest`` when any newer release is (prereleases never count: they get no floating
    tags). A raw tag is never held.
    """
    tags = compute_tags(version, sha, options)
    if floating == "always":
        return TagPlan(tuple(tags))
    newer = [p for p in published if not p.is_prerelease and p > version]
    lines: list[tuple[str, Any]] = []
    if not version.is_prerelease:
        lines.append((f"{options.prefix}{version.major}.{version.minor}{options.suffix}",
                      lambda p: (p.major, p.minor) == (version.major, version.minor)))
        if version.major != 0 or options.major_zero:
            lines.append((f"{options.prefix}{version.major}{options.suffix}", lambda p: p.major == version.major))
    lines.append((f"{options.prefix if options.prefix_on_latest else ''}latest"
                  f"{options.suffix if options.suffix_on_latest else ''}", lambda p: True))
    raw = {sanitize_tag(t) for t in options.raw}
    held: list[tuple[str, str]] = []
    for name, same_line in lines:
        name = sanitize_tag(name)
        ahead = [p for p in newer if same_line(p)]
        if name in tags and name not in raw and ahead:
            held.append((name, f"{max(ahead)} is already released"))
    drop = {h for h, _ in held}
    return TagPlan(tuple(t for t in tags if t not in drop), tuple(held))


def intermediate_pattern(config: Config) -> re.Pattern[str]:
    """Matches the per-group tags ``intermediate_tag`` makes (``1.4.2-amd64``), so they are never versions."""
    groups = "|".join(re.escape(g) for g in sorted(config.platform_groups, key=len, reverse=True))
    parts = re.split(r"(\{tag\}|\{group\})", config.intermediate_tag)
    regex = "".join("(?P<tag>.+)" if p == "{tag}" else f"(?:{groups})" if p == "{group}" else re.escape(p)
                    for p in parts)
    return re.compile(regex)


def published_versions(tags: Iterable[str], options: TagOptions, intermediate: re.Pattern[str]) -> dict[Version, str]:
    """Released versions found in a repository's tags: version -> tag (prefix/suffix stripped, per-group
    intermediate tags and partial versions such as ``1.4`` ignored)."""
    out: dict[Version, str] = {}
    for tag in tags:
        if intermediate.fullmatch(tag):
            continue
        core = tag
        if options.prefix:
            if not core.startswith(options.prefix):
                continue
            core = core[len(options.prefix):]
        if options.suffix:
            if not core.endswith(options.suffix):
                continue
            core = core[:-len(options.suffix)]
        try:
            version = parse_version(core)
        except TagError:
            continue
        out.setdefault(version, tag)
    return out


def previous_release(version: Version, published: Mapping[Version, str]) -> tuple[Version, str] | None:
    """The release to compare sizes with: the highest version below ``version`` (for a stable release the
    highest stable one, so 1.5.0 compares with 1.4.x, not with 1.5.0-rc.2)."""
    candidates = [v for v in published if v < version and (version.is_prerelease or not v.is_prerelease)]
    if not candidates:
        return None
    best = max(candidates)
    return best, published[best]


# --------------------------------------------------------------------------- build overlay
def release_labels(version: Version, git: GitInfo) -> dict[str, str]:
    return oci_labels(version, git.sha, git.source, git.created)


def overlay(config: Config, targets: Iterable[str], labels: Mapping[str, str], epoch: int) -> dict[str, Any]:
    """The bake overlay for a release: OCI labels and manifest annotations, ``SOURCE_DATE_EPOCH`` = commit time.

    Keys the user set (``labels`` in bakery.yaml, ``args.SOURCE_DATE_EPOCH``, ``bake.annotations``) win; the
    user's annotations are repeated so a list-replacing merge cannot lose them.
    """
    out: dict[str, Any] = {}
    infos = bakefile.target_infos(config, targets)
    for info in infos:
        img = config.images[info.image]
        own = {**config.labels, **img.labels}
        lab = {k: v for k, v in labels.items() if k not in own}
        user_ann = [str(a) for a in img.bake.get("annotations") or []]
        user_keys = {a.split("=", 1)[0].split(":", 1)[-1] for a in user_ann}
        ann = user_ann + [bakefile.escape(f"{k}={v}") for k, v in labels.items() if k not in user_keys]
        body: dict[str, Any] = {}
        if lab:
            body["labels"] = {bakefile.escape(k): bakefile.escape(v) for k, v in lab.items()}
        if ann:
            body["annotations"] = ann
        if "SOURCE_DATE_EPOCH" not in img.args:
            body["args"] = {"SOURCE_DATE_EPOCH": str(epoch)}
        out[info.name] = body
    return {"target": out}


# --------------------------------------------------------------------------- smoke tests
@dataclass(frozen=True)
class SmokeSpec:
    image: str
    platform: str
    ref: str                              # <registry>/<repository>@<platform manifest digest>
    command: tuple[str, ...] | None       # None: start check; (): no smoke test (test: [] in bakery.yaml)

    @property
    def kind(self) -> str:
        return "start-check" if self.command is None else "test" if self.command else "skipped"

    @property
    def label(self) -> str:
        return f"[{self.image} {self.platform}]"


@dataclass(frozen=True)
class SmokeResult:
    image: str
    platform: str
    kind: str                 # test | start-check | skipped | already-released
    passed: bool
    exit_code: int | None
    detail: str               # one line: what happened
    output: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.kind in ("skipped", "already-released"):
            return "not run" if self.kind == "already-released" else "skipped"
        return "passed" if self.passed else "failed"


def container_name(spec: SmokeSpec, token: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"{spec.image}-{spec.platform}")
    return f"bakery-smoke-{safe}-{token}"


def smoke_argv(docker: Docker, spec: SmokeSpec, name: str) -> list[str]:
    """``docker run`` for one smoke test: detached, named (to wait, read logs and remove), always pulled, the test
    command replacing the entrypoint (so an image whose ENTRYPOINT is a server still runs the test)."""
    args = docker.cmd("run", "-d", "--name", name, "--pull", "always", "--platform", spec.platform)
    if spec.command:
        args += ["--entrypoint", spec.command[0], spec.ref, *spec.command[1:]]
    else:
        args.append(spec.ref)
    return args


def judge(spec: SmokeSpec, exit_code: int | None, timeout: float, start_seconds: float) -> tuple[bool, str]:
    """Pass/fail of one smoke run. ``exit_code`` None means the container was still running when we stopped
    waiting (after ``timeout`` for a test, ``start_seconds`` for a start check)."""
    if spec.command:
        shown = " ".join(spec.command)
        if exit_code is None:
            return False, f"smoke test `{shown}` did not finish within {timeout:g}s"
        if exit_code != 0:
            return False, f"smoke test `{shown}` exited {exit_code}"
        return True, f"smoke test `{shown}` exited 0"
    if exit_code is None:
        return True, f"start check: still running after {start_seconds:g}s"
    if exit_code != 0:
        return False, f"start check: the container exited {exit_code}"
    return True, "start check: the container exited 0"


def run_smoke(docker: Docker, spec: SmokeSpec, token: str, timeout: float, start_seconds: float,
              out: TextIO) -> SmokeResult:
    """Run one smoke test for real, print its output labelled, and clean up the container and pulled image."""
    if spec.kind == "skipped":
        print(f"{spec.label} skipped: images.{spec.image}.test is empty", file=out, flush=True)
        return SmokeResult(spec.image, spec.platform, spec.kind, True, None, "skipped (test: [])")
    name = container_name(spec, token)
    runner, env = docker.runner, docker.env
    exit_code: int | None = None
    lines: list[str] = []
    try:
        started = runner.run(smoke_argv(docker, spec, name), env=env, check=False, action=True)
        if started.returncode != 0:
            lines = [ln for ln in started.stderr.splitlines() if ln.strip()]
            for ln in lines:
                print(f"{spec.label} {ln}", file=out, flush=True)
            why = lines[-1] if lines else f"docker run exited {started.returncode}"
            return SmokeResult(spec.image, spec.platform, spec.kind, False, None,
                               f"could not start the container: {why}", tuple(lines))
        wait = timeout if spec.command else start_seconds
        try:
            res = runner.run(docker.cmd("wait", name), env=env, timeout=wait, check=False)
            text = res.stdout.strip()
            exit_code = int(text) if text.lstrip("-").isdigit() else 1
        except CommandError as exc:
            if exc.returncode != -1:
                raise
            exit_code = None            # timed out: still running
        logs = runner.run(docker.cmd("logs", name), env=env, check=False)
        lines = [ln for ln in (logs.stdout + logs.stderr).splitlines()]
        for ln in lines:
            print(f"{spec.label} {ln}", file=out, flush=True)
    finally:
        runner.run(docker.cmd("rm", "-f", name), env=env, check=False, action=True)
        runner.run(docker.cmd("image", "rm", spec.ref), env=env, check=False, action=True)
    passed, detail = judge(spec, exit_code, timeout, start_seconds)
    print(f"{spec.label} {'passed' if passed else 'FAILED'}: {detail}", file=out, flush=True)
    return SmokeResult(spec.image, spec.platform, spec.kind, passed, exit_code, detail, tuple(lines))


# --------------------------------------------------------------------------- stitching / publishing
@dataclass(frozen=True)
class IndexPlan:
    image: str
    repository: str          # repository path in the registry
    name: str                # full name, e.g. 127.0.0.1:5000/acme/api
    tags: tuple[str, ...]
    raw: bytes
    digest: str
    reused: bool             # the version tag already holds this release's images: published as it is
    dropped: tuple[str, ...] = ()
    note: str = ""           # why it was reused, for the output


def reusable(existing: Manifest | None, entries: Sequence[Mapping[str, Any]], annotations: Mapping[str, str],
             attestations: str) -> bool:
    """Whether an already published index is this release: same image entries (digest and platform), same index
    annotations, and attestations per ``attestations`` (one for each image that has one now, none dangling)."""
    old = _entries_if_annotated(existing, annotations)
    if old is None:
        return False

    def images(es: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
        return {(str(e["digest"]), entry_platform(e)) for e in es if not is_attestation(dict(e))}

    def attested(es: Iterable[Mapping[str, Any]]) -> set[str | None]:
        return {attestation_of(e) for e in es if is_attestation(dict(e))}

    if images(old) != images(entries):
        return False
    if attestations == "drop":
        return not attested(old)
    return attested(old) == attested(entries) and attested(old) <= {d for d, _ in images(old)}


def _entries_if_annotated(existing: Manifest | None,
                          annotations: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """The entries of ``existing`` when it is an index annotated exactly with ``annotations``; else None."""
    if existing is None or not existing.is_index:
        return None
    body = existing.json
    if (body.get("annotations") or {}) != dict(annotations):
        return None
    return list(body.get("manifests") or [])


def already_released(existing: Manifest | None, annotations: Mapping[str, str], platforms: Sequence[str],
                     attestations: str) -> bool:
    """Whether the version tag already holds THIS release: an index annotated with the same version, revision,
    source and created (so: the same commit), holding exactly ``platforms``, attestations as configured (none
    with ``drop``; none dangling with ``keep``). A re-run then publishes it again instead of rebuilding."""
    entries = _entries_if_annotated(existing, annotations)
    if entries is None:
        return False
    found = [entry_platform(e) for e in entries if not is_attestation(e)]
    if sorted(found) != sorted(platforms) or len(set(found)) != len(found):
        return False
    images = {str(e["digest"]) for e in entries if not is_attestation(e)}
    attested = [attestation_of(e) for e in entries if is_attestation(e)]
    if attestations == "drop":
        return not attested
    return all(a in images for a in attested)


@dataclass(frozen=True)
class _Previous:
    repository: str
    tag: str
    manifest: Manifest | None


def publish(registry: Registry, plans: Sequence[IndexPlan]) -> None:
    """PUT every plan's index under all its tags; on any failure put every moved tag back as it was."""
    before: dict[tuple[str, str], _Previous] = {}
    for p in plans:
        for tag in p.tags:
            found = registry.head_manifest(p.repository, tag)
            before[(p.repository, tag)] = _Previous(p.repository, tag,
                                                    registry.get_manifest(p.repository, tag) if found else None)
    moved: list[_Previous] = []
    try:
        for p in plans:
            for tag in p.tags:
                registry.put_manifest(p.repository, tag, p.raw, OCI_INDEX)
                moved.append(before[(p.repository, tag)])
    except BakeryError as exc:
        failed = _roll_back(registry, moved)
        where = f"{len(moved)} tag(s) had moved and were put back" if not failed else \
            f"could NOT restore {', '.join(failed)}: check them"
        raise BakeryError(f"publish failed: {exc}; {where}") from None


def _roll_back(registry: Registry, moved: Sequence[_Previous]) -> list[str]:
    failed = []
    for prev in reversed(moved):
        try:
            if prev.manifest is not None:
                registry.put_manifest(prev.repository, prev.tag, prev.manifest.raw, prev.manifest.media_type)
            else:
                untag(registry, prev.repository, prev.tag)
        except BakeryError:
            failed.append(f"{prev.repository}:{prev.tag}")
    return failed


# --------------------------------------------------------------------------- sizes and report
def compare_sizes(current: Mapping[str, int], previous: Mapping[str, int],
                  threshold: float | None) -> tuple[dict[str, float | None], list[str]]:
    """Per platform: relative change against the previous release (None when the platform is new), and a
    warning for each platform that grew more than ``threshold`` (a fraction; None: never warn)."""
    changes: dict[str, float | None] = {}
    warnings: list[str] = []
    for platform, size in current.items():
        old = previous.get(platform)
        if not old:
            changes[platform] = None
            continue
        change = (size - old) / old
        changes[platform] = round(change, 4)
        if threshold is not None and change > threshold:
            warnings.append(f"{platform} grew {percent(change)} ({human_bytes(old)} -> {human_bytes(size)}), "
                            f"above size_growth_warn {threshold:.0%}")
    return changes, warnings


def percent(change: float) -> str:
    """``+20.0%``; a change that rounds to zero is ``0.0%`` (never ``-0.0%``)."""
    text = f"{change:+.1%}"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    digest: str
    size: int                       # compressed: sum of the layer sizes in the manifest
    smoke: str                      # passed | failed | skipped | not run (already released from this commit)
    smoke_kind: str                 # test | start-check | skipped
    smoke_detail: str
    previous_size: int | None = None
    size_change: float | None = None


@dataclass(frozen=True)
class ImageReport:
    image: str
    name: str                       # registry/repository
    tags: tuple[str, ...]
    held_tags: tuple[tuple[str, str], ...]
    index_digest: str | None
    reused: bool
    attestations: str
    platforms: tuple[PlatformReport, ...]
    previous: dict[str, str] | None = None      # {"version", "tag", "digest"}
    warnings: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(p.size for p in self.platforms)


@dataclass(frozen=True)
class ReleaseReport:
    version: str
    prerelease: bool
    revision: str
    source: str | None
    created: str
    version_from: str
    dirty: bool
    published: bool
    images: tuple[ImageReport, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images"] = {i.image: {**{k: v for k, v in asdict(i).items() if k != "image"},
                                    "held_tags": [{"tag": t, "why": w} for t, w in i.held_tags],
                                    "platforms": {p.platform: {k: v for k, v in asdict(p).items() if k != "platform"}
                                                  for p in i.platforms}}
                          for i in self.images}
        normal: dict[str, Any] = json.loads(json.dumps(data))     # tuples as lists, as the file holds them
        return normal

    @property
    def warnings(self) -> list[str]:
        return [f"{i.image}: {w}" for i in self.images for w in i.warnings]


def carry_smoke(report: ReleaseReport, earlier: Mapping[str, Any] | None) -> ReleaseReport:
    """For images published again without a new smoke test (already released from this commit), take the smoke
    results of the earlier report of this version when it describes the same index."""
    if not earlier:
        return report
    images = []
    for i in report.images:
        old = (earlier.get("images") or {}).get(i.image) or {}
        if not i.reused or old.get("index_digest") != i.index_digest:
            images.append(i)
            continue
        platforms = []
        for p in i.platforms:
            was = (old.get("platforms") or {}).get(p.platform) or {}
            if p.smoke == "not run" and was.get("digest") == p.digest and was.get("smoke") not in (None, "not run"):
                p = replace(p, smoke=was["smoke"], smoke_kind=was.get("smoke_kind", ""),
                            smoke_detail=f"{was.get('smoke_detail', '')} (earlier run)")
            platforms.append(p)
        images.append(replace(i, platforms=tuple(platforms)))
    return replace(report, images=tuple(images))


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


def report_paths(config: Config, version: Version) -> tuple[Path, Path]:
    base = config.root / config.bake_dir
    return base / f"release-{sanitize_tag(str(version))}.json", base / REPORT_LATEST


def write_report(config: Config, version: Version, report: ReleaseReport) -> tuple[Path, Path]:
    """Both report files, atomically together."""
    text = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    paths = report_paths(config, version)
    write_files({p: text for p in paths})
    return paths


def render_report(report: ReleaseReport) -> str:
    """The summary table printed at the end of a release."""
    rows = [("IMAGE", "PLATFORM", "DIGEST", "SIZE", "CHANGE", "SMOKE")]
    for i in report.images:
        for p in i.platforms:
            change = "new" if p.size_change is None and i.previous else \
                "-" if p.size_change is None else percent(p.size_change)
            rows.append((i.image, p.platform, p.digest[:19], human_bytes(p.size), change, p.smoke))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    for i in report.images:
        state = "published" if report.published else "not published"
        digest = i.index_digest or "-"
        again = " (already published: index kept)" if i.reused else ""
        lines.append(f"{i.image}: {state} {i.name}@{digest}{again}")
        lines.append(f"  tags: {', '.join(i.tags)}")
        for tag, why in i.held_tags:
            lines.append(f"  held: {tag} stays where it is ({why})")
        if i.previous:
            lines.append(f"  previous release: {i.previous['version']} ({i.previous['digest'][:19]})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the release
@dataclass(frozen=True)
class ReleaseRequest:
    version: str | None = None
    groups: tuple[str, ...] = ()          # build only these groups; others are reused from this version's refs
    images: tuple[str, ...] = ()
    cache_scope: str | None = None
    progress: str = "plain"
    allow_dirty: bool = False
    publish: bool = True
    untag_intermediate: bool = False
    rebuild: bool = False                 # build and test again even when this commit's release is published


@dataclass
class _Image:
    """Working state of one image during a release."""

    name: str
    repository: str
    full_name: str
    plan: TagPlan
    previous: tuple[Version, str] | None
    groups: dict[str, str] = field(default_factory=dict)            # group -> digest of its per-group result
    group_manifests: dict[str, Manifest] = field(default_factory=dict)
    platforms: dict[str, Manifest] = field(default_factory=dict)     # platform -> its image manifest
    missing: set[str] = field(default_factory=set)                   # groups skipped (--no-publish only)
    released: Manifest | None = None      # the version tag already holds this commit's release (not rebuilt)


class ReleaseFailed(BakeryError):
    """A release step failed; nothing public changed."""


def release(config: Config, docker: Docker, request: ReleaseRequest, *, out: TextIO = sys.stdout,
            token: str = "0") -> ReleaseReport:
    """Build, push per-group refs, smoke-test every platform, then publish every tag of the set; see the module
    docstring. ``token`` makes container names unique (the caller passes e.g. the pid)."""
    opts = settings(config)
    dry = docker.runner.dry_run
    images = _selected_images(config, request)
    groups = _selected_groups(config, request)
    git = git_info(docker.runner, config.root, config.bake_dir)
    if git.dirty and not request.allow_dirty:
        shown = ", ".join(git.dirty[:5]) + (f" (+{len(git.dirty) - 5} more)" if len(git.dirty) > 5 else "")
        raise BakeryError(f"the working tree has uncommitted changes ({shown}); commit or stash them, or pass "
                          "--allow-dirty (the images would not match the revision they are labelled with)")
    version, version_from = resolve_version(request.version, git.head_tags)
    tag = sanitize_tag(str(version))
    variables = bake_variables(config, tag, request.cache_scope)
    registry, prefix = registry_for(variables[VAR_REGISTRY])
    labels = release_labels(version, git)
    annotations = {k: v for k, v in labels.items() if k in OCI_KEYS}
    notes: list[str] = []
    if git.dirty:
        notes.append(f"built from a dirty working tree ({len(git.dirty)} changed path(s)); revision {git.sha[:12]} "
                     "does not describe it exactly")

    print(f"release {version} ({version_from}), commit {git.sha[:12]}, created {git.created}", file=out)
    work: dict[str, _Image] = {}
    pattern = intermediate_pattern(config)
    for name in images:
        img = config.images[name]
        repo = f"{prefix}/{img.repository}" if prefix else img.repository
        try:
            published = published_versions(registry.tags(repo), opts.tags, pattern)
        except RegistryError as exc:
            if not dry:
                raise
            notes.append(f"{name}: registry not reachable ({exc}); floating tags planned without it")
            published = {}
        plan = plan_tags(version, git.sha, opts.tags, published, opts.floating)
        w = work[name] = _Image(name, repo, f"{variables[VAR_REGISTRY]}/{img.repository}", plan,
                                previous_release(version, published))
        print(f"  {name}: {w.full_name}: {' '.join(plan.tags)}", file=out)
        for held, why in plan.held:
            print(f"  {name}: {held} stays where it is ({why})", file=out)
        if not request.rebuild and version in published:
            existing = registry.get_manifest(repo, published[version])
            if already_released(existing, annotations, config.platforms_of(name), opts.attestations):
                w.released = existing
                print(f"  {name}: {version} is already released from this commit ({short(existing.digest)}): "
                      "not rebuilt, its index is published again (--rebuild to build and test again)", file=out)

    # groups not rebuilt now come from this version's per-group refs, built earlier from the same commit
    fresh = [n for n in images if work[n].released is None]
    to_build = [target_name(n, g) for n in fresh for g in config.images[n].platform_groups if g in groups]
    for name in fresh:
        for g in config.images[name].platform_groups:
            if g not in groups:
                _reuse_group(config, registry, work[name], g, tag, git.sha, dry or not request.publish)
                if g in work[name].missing:
                    notes.append(f"{name}: group {g} neither rebuilt nor found under "
                                 f"{bakefile.intermediate_tag(config, g, tag)}: not tested, no index planned")

    if to_build:
        print(f"== build and push {len(to_build)} target(s) to the per-group refs "
              f"{', '.join(sorted({bakefile.intermediate_tag(config, g, tag) for g in groups}))} "
              "(no public tag changes)", file=out, flush=True)
        built_groups = tuple(g for g in config.platform_groups if g in groups)
        try:
            result = build(config, docker, BuildRequest(groups=built_groups, images=tuple(fresh), tag=tag,
                                                        cache_scope=request.cache_scope, push=True, stitch=False,
                                                        progress=request.progress,
                                                        overlay=overlay(config, to_build, labels, git.epoch)))
        except BakeryError as exc:
            raise ReleaseFailed(f"release {version} failed at step build: {exc}; nothing was published") from None
        if not dry:
            for tname in to_build:
                info = result.targets.get(tname) or {}
                if not info.get("digest"):
                    raise ReleaseFailed(f"release {version} failed at step push: bake reported no digest for "
                                        f"{tname}; nothing was published")
                work[info["image"]].groups[info["group"]] = info["digest"]

    if dry:
        return _dry_run(config, work, version, tag, git, version_from, opts, request, out, notes)

    # per platform: the manifest each group result holds (checked against the group's platforms)
    for w in work.values():
        if w.released is not None:
            for e in w.released.json.get("manifests") or []:
                if not is_attestation(e):
                    w.platforms[entry_platform(e)] = registry.get_manifest(w.repository, str(e["digest"]))
        for g in config.images[w.name].platform_groups:
            if g not in w.missing and w.released is None:
                _load_group(config, registry, w, g)
        w.platforms = {p: w.platforms[p] for p in config.platforms_of(w.name) if p in w.platforms}

    results: list[SmokeResult] = []
    if fresh:
        print("== smoke tests (every platform of every image)", file=out, flush=True)
    for w in work.values():
        if w.released is not None:
            results.extend(SmokeResult(w.name, p, "already-released", True, None,
                                       "not run again: already released from this commit") for p in w.platforms)
            continue
        command = config.images[w.name].test
        for platform, man in w.platforms.items():
            spec = SmokeSpec(w.name, platform, f"{w.full_name}@{man.digest}", command)
            results.append(run_smoke(docker, spec, token, opts.test_timeout, opts.start_seconds, out))
    failed = [r for r in results if not r.passed]
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more: " + ", ".join(f"{r.image} {r.platform}" for r in failed[1:]) + ")" \
            if len(failed) > 1 else ""
        raise ReleaseFailed(f"release {version} failed at step smoke test: {first.image} {first.platform}: "
                            f"{first.detail}{more}; nothing was published (per-group refs "
                            f"{', '.join(sorted({bakefile.intermediate_tag(config, g, tag) for g in groups}))} "
                            "were pushed)")

    plans = [_index_plan(config, registry, w, tag, annotations, opts.attestations) for w in work.values()
             if not w.missing]
    # everything the report needs is read now: after publishing, only the untagging talks to the registry
    report = _report(registry, work, plans, results, version, git, version_from, opts, False, notes)
    if request.publish:
        print("== publish", file=out, flush=True)
        try:
            publish(registry, plans)
        except BakeryError as exc:
            raise ReleaseFailed(f"release {version} failed at step publish: {exc}") from None
        report = carry_smoke(replace(report, published=True), read_report(report_paths(config, version)[0]))
        for p in plans:
            again = f" ({p.note})" if p.note else ""
            print(f"  {p.name}@{p.digest} -> {', '.join(p.tags)}{again}", file=out, flush=True)
        if request.untag_intermediate:
            _untag_intermediate(config, registry, work.values(), tag, version, out)
    else:
        report = replace(report, notes=(*report.notes, "--no-publish: nothing was published"))

    print("== report", file=out)
    print(render_report(report), file=out)
    for warning in report.warnings:
        print(f"warning: {warning}", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    if report.published:
        paths = write_report(config, version, report)
        print(f"report: {', '.join(str(p.relative_to(config.root)) for p in paths)}", file=out, flush=True)
    return report


def _untag_intermediate(config: Config, registry: Registry, work: Iterable[_Image], tag: str, version: Version,
                        out: TextIO) -> None:
    for w in work:
        for g in config.images[w.name].platform_groups:
            ref = bakefile.intermediate_tag(config, g, tag)
            try:
                done = untag(registry, w.repository, ref)
            except BakeryError as exc:
                raise BakeryError(f"release {version} is published, but untagging {w.full_name}:{ref} failed: {exc}; "
                                  f"retry with manifest.rm {w.full_name}:{ref}") from None
            print(f"  untagged {w.full_name}:{done.tag} (manifest {short(done.previous or '')} kept)", file=out)


def _selected_images(config: Config, request: ReleaseRequest) -> list[str]:
    for i in request.images:
        if i not in config.images:
            raise BakeryError(f"--image {i!r} is not an image; {suggest(i, list(config.images))}")
    return [n for n in config.images if not request.images or n in request.images]


def _selected_groups(config: Config, request: ReleaseRequest) -> set[str]:
    for g in request.groups:
        if g not in config.platform_groups:
            raise BakeryError(f"--group {g!r} is not a platform group; {suggest(g, list(config.platform_groups))}")
    return set(request.groups) or set(config.platform_groups)


def _reuse_group(config: Config, registry: Registry, w: _Image, group: str, tag: str, sha: str,
                 optional: bool) -> None:
    """Take a group that is not rebuilt from this version's per-group ref, built from the same commit. A missing
    ref is an error, unless ``optional`` (dry run, --no-publish): then the group is left out."""
    ref = bakefile.intermediate_tag(config, group, tag)
    digest = registry.head_manifest(w.repository, ref)
    if digest is None:
        if optional:
            w.missing.add(group)
            return
        raise BakeryError(f"{w.name}: group {group} is not rebuilt (--group) and {w.full_name}:{ref} does not exist; "
                          f"add --group {group}")
    _load_group(config, registry, w, group, digest)
    for platform, man in w.platforms.items():
        if platform not in config.platform_groups[group].platforms:
            continue
        cfg = read_config(registry, w.repository, man.json)
        revision = ((cfg.get("config") or {}).get("Labels") or {}).get("org.opencontainers.image.revision")
        if revision != sha:
            raise BakeryError(f"{w.name}: {w.full_name}:{ref} ({platform}) was built from "
                              f"{(revision or 'an unlabelled build')[:12]}, not HEAD {sha[:12]}; rebuild it with "
                              f"--group {group}")


def _load_group(config: Config, registry: Registry, w: _Image, group: str, digest: str | None = None) -> None:
    if group in w.group_manifests:
        return
    digest = digest or w.groups[group]
    w.groups[group] = digest
    man = registry.get_manifest(w.repository, digest)
    w.group_manifests[group] = man
    expected = config.platform_groups[group].platforms
    entries = [e for e in index_entries(man, functools.partial(config_platform, registry, w.repository))
               if not is_attestation(e)]
    found = [entry_platform(e) for e in entries]
    if sorted(found) != sorted(expected):
        raise BakeryError(f"{w.name}: {w.full_name}@{digest} holds platforms {found}, group {group} is "
                          f"{list(expected)}")
    for e in entries:
        w.platforms[entry_platform(e)] = man if not man.is_index else registry.get_manifest(w.repository,
                                                                                             str(e["digest"]))


def _index_plan(config: Config, registry: Registry, w: _Image, tag: str, annotations: Mapping[str, str],
                attestations: str) -> IndexPlan:
    if w.released is not None:
        return IndexPlan(w.name, w.repository, w.full_name, w.plan.tags, w.released.raw, w.released.digest, True,
                         note="already released from this commit: index kept")
    entries: list[dict[str, Any]] = []
    platform = functools.partial(config_platform, registry, w.repository)
    for g in config.images[w.name].platform_groups:
        entries.extend(index_entries(w.group_manifests[g], platform))
    selection = select_entries(entries, attestations)
    check_platforms(selection.entries)
    raw = index_bytes(selection.entries, annotations)
    existing = registry.get_manifest(w.repository, tag) if registry.head_manifest(w.repository, tag) else None
    if existing is not None and reusable(existing, selection.entries, annotations, attestations):
        return IndexPlan(w.name, w.repository, w.full_name, w.plan.tags, existing.raw, existing.digest, True,
                         selection.dropped, "already published with the same images: index kept")
    return IndexPlan(w.name, w.repository, w.full_name, w.plan.tags, raw, digest_of(raw), False, selection.dropped)


def _report(registry: Registry, work: Mapping[str, _Image], plans: Sequence[IndexPlan],
            results: Sequence[SmokeResult], version: Version, git: GitInfo, version_from: str,
            opts: ReleaseSettings, published: bool, notes: list[str]) -> ReleaseReport:
    images = []
    by_plan = {p.image: p for p in plans}
    smoke = {(r.image, r.platform): r for r in results}
    for w in work.values():
        sizes = {p: layer_bytes(m) for p, m in w.platforms.items()}
        prev_sizes: dict[str, int] = {}
        previous = None
        if w.previous:
            pv, ptag = w.previous
            prev_man = registry.get_manifest(w.repository, ptag)
            previous = {"version": str(pv), "tag": ptag, "digest": prev_man.digest}
            prev_sizes = _sizes(registry, w.repository, prev_man)
        changes, warnings = compare_sizes(sizes, prev_sizes, opts.size_growth_warn) if w.previous else ({}, [])
        platforms = []
        for p, m in w.platforms.items():
            r = smoke.get((w.name, p))
            platforms.append(PlatformReport(p, m.digest, sizes[p], r.status if r else "not run",
                                            r.kind if r else "", r.detail if r else "",
                                            prev_sizes.get(p) if w.previous else None, changes.get(p)))
        plan = by_plan.get(w.name)
        images.append(ImageReport(w.name, w.full_name, w.plan.tags, w.plan.held, plan.digest if plan else None,
                                  bool(plan and plan.reused), opts.attestations, tuple(platforms), previous,
                                  tuple(warnings)))
    return ReleaseReport(str(version), version.is_prerelease, git.sha, git.source, git.created, version_from,
                         bool(git.dirty), published, tuple(images), tuple(notes))


def _sizes(registry: Registry, repo: str, man: Manifest) -> dict[str, int]:
    """Per platform compressed size of a published release (an index, or a single manifest)."""
    if not man.is_index:
        return {platform_of_manifest(registry, repo, man): layer_bytes(man)}
    out = {}
    for e in man.json.get("manifests") or []:
        if is_attestation(e):
            continue
        out[entry_platform(e)] = layer_bytes(registry.get_manifest(repo, str(e["digest"])))
    return out


def platform_of_manifest(registry: Registry, repo: str, man: Manifest) -> str:
    return entry_platform({"platform": config_platform(registry, repo, man.json)})


def _dry_run(config: Config, work: Mapping[str, _Image], version: Version, tag: str, git: GitInfo,
             version_from: str, opts: ReleaseSettings, request: ReleaseRequest, out: TextIO,
             notes: list[str]) -> ReleaseReport:
    for w in work.values():
        if w.released is not None:
            print(f"would publish {w.full_name}@{w.released.digest} again (already released from this commit)",
                  file=out)
            continue
        img = config.images[w.name]
        kind = "start check" if img.test is None else "no smoke test (test: [])" if not img.test else \
            f"smoke test `{' '.join(img.test)}`"
        for p in config.platforms_of(w.name):
            print(f"would run {kind} on {w.name} {p} ({w.full_name}@<digest of {p}>)", file=out)
    for w in work.values():
        if request.publish and w.released is None:
            print(f"would publish one index ({', '.join(config.platforms_of(w.name))}, attestations "
                  f"{opts.attestations}) as {w.full_name}:{{{','.join(w.plan.tags)}}}", file=out)
    if request.publish:
        print(f"would write {', '.join(str(p.relative_to(config.root)) for p in report_paths(config, version))}",
              file=out)
    for note in notes:
        print(f"note: {note}", file=out)
    return ReleaseReport(str(version), version.is_prerelease, git.sha, git.source, git.created, version_from,
                         bool(git.dirty), False,
                         tuple(ImageReport(w.name, w.full_name, w.plan.tags, w.plan.held, None, False,
                                           opts.attestations, ()) for w in work.values()), tuple(notes))
