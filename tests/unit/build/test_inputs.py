"""Input digests (bakery.build.inputs, bakery.build.dockerfile): what changes a target's digest and what does not,
.dockerignore as BuildKit reads it, the stat cache, and the inputs bakery cannot see."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bakery.build import dockerfile, inputs

BASE = "127.0.0.1:5000/base/busybox:1.35"
DIGESTS = {BASE: "sha256:" + "1" * 64, "registry.test/golang:1.19": "sha256:" + "2" * 64}


def resolver(calls: list[str] | None = None, table: dict[str, str] | None = None) -> inputs.Resolver:
    def resolve(ref: str) -> str | None:
        if calls is not None:
            calls.append(ref)
        return (DIGESTS if table is None else table).get(ref)
    return resolve


def project(tmp_path: Path, dockerfile_text: str = f"FROM {BASE}\nCOPY . /app\n") -> Path:
    ctx = tmp_path / "app"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile_text)
    (ctx / "main.sh").write_text("echo hi\n")
    return tmp_path


def target(**extra: Any) -> dict[str, Any]:
    return {"context": "app", "dockerfile": "Dockerfile", "platforms": ["linux/amd64"],
            "tags": ["r/app:v1-amd64"], "cache-to": ["type=registry,ref=r/app:cache"], **extra}


def digest(root: Path, t: dict[str, Any] | None = None, resolve: inputs.Resolver | None = None,
           cache: inputs.StatCache | None = None, env: dict[str, str] | None = None) -> inputs.TargetInputs:
    got = inputs.compute(root, {"app-amd64": t or target()}, ["app-amd64"], resolve or resolver(),
                         cache or inputs.StatCache(), env or {})
    return got["app-amd64"]


def test_the_digest_is_stable_and_ignores_tags_cache_settings_and_times(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = digest(root)
    assert first.digest and first.digest.startswith("sha256:") and not first.reasons
    os.utime(root / "app" / "main.sh", (1, 1))
    assert digest(root, target(tags=["r/app:v2-amd64"], **{"cache-to": ["type=inline"]})).digest == first.digest


def test_a_file_a_mode_an_arg_a_label_or_a_platform_changes_it(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = digest(root).digest
    assert digest(root, target(args={"X": "1"})).digest != first
    assert digest(root, target(labels={"a": "b"})).digest != first
    assert digest(root, target(platforms=["linux/arm64"])).digest != first
    (root / "app" / "main.sh").chmod(0o755)
    second = digest(root).digest
    assert second != first
    (root / "app" / "main.sh").write_text("echo changed\n")
    assert digest(root).digest not in (first, second)


def test_a_dockerignored_file_does_not_change_it(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "app" / ".dockerignore").write_text("# notes\nnotes/\n*.log\n!keep.log\n")
    (root / "app" / "notes").mkdir()
    (root / "app" / "notes" / "a.txt").write_text("1")
    first = digest(root).digest
    (root / "app" / "notes" / "a.txt").write_text("2")
    (root / "app" / "debug.log").write_text("x")
    assert digest(root).digest == first
    (root / "app" / "keep.log").write_text("x")
    assert digest(root).digest != first


def test_dockerignore_patterns_follow_patternmatcher() -> None:
    pats = inputs.read_ignore("**/*.tmp\n/build\ndocs/**\n!docs/keep.md\nsrc/?.c\n")
    assert inputs.ignored("a/b/c.tmp", pats) and inputs.ignored("c.tmp", pats)
    assert inputs.ignored("build/x/y", pats) and not inputs.ignored("src/build", pats)
    assert inputs.ignored("docs/a.md", pats) and not inputs.ignored("docs/keep.md", pats)
    assert inputs.ignored("src/a.c", pats) and not inputs.ignored("src/ab.c", pats)


def test_a_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "app" / ".dockerignore").write_text("main.sh\n")
    (root / "app" / "Dockerfile.dockerignore").write_text("nothing\n")
    first = digest(root).digest
    (root / "app" / "main.sh").write_text("echo changed\n")
    assert digest(root).digest != first


def test_every_base_is_resolved_once_and_a_new_base_digest_changes_it(tmp_path: Path) -> None:
    root = project(tmp_path, "ARG BASE=registry.test\nFROM --platform=$BUILDPLATFORM ${BASE}/golang:1.19 AS build\n"
                             f"FROM {BASE}\nCOPY --from=build /x /x\nFROM {BASE}@sha256:{'3' * 64}\n")
    calls: list[str] = []
    got = digest(root, target(platforms=["linux/amd64", "linux/arm64"]), resolver(calls))
    assert sorted(calls) == sorted(DIGESTS)
    assert got.parts["bases"][f"{BASE}@sha256:{'3' * 64}"] == "sha256:" + "3" * 64
    moved = {**DIGESTS, BASE: "sha256:" + "9" * 64}
    assert digest(root, target(platforms=["linux/amd64", "linux/arm64"]), resolver(table=moved)).digest != got.digest


def test_inputs_bakery_cannot_see_give_no_digest(tmp_path: Path) -> None:
    root = project(tmp_path, f"FROM {BASE}\nADD https://example.com/x.tgz /x\n")
    got = digest(root)
    assert got.digest is None and "ADD https://example.com/x.tgz (remote content)" in got.reasons
    pinned = project(tmp_path / "p", f"FROM {BASE}\nADD --checksum=sha256:{'a' * 64} https://e.com/x /x\n")
    assert digest(pinned).digest
    assert digest(root, target(context="https://github.com/a/b.git")).digest is None
    assert digest(pinned, target(**{"no-cache": True})).digest is None
    assert digest(pinned, resolve=resolver(table={})).reasons == (f"cannot resolve {BASE}: not found",)


def test_a_build_arg_from_the_environment_is_an_input(tmp_path: Path) -> None:
    root = project(tmp_path)
    t = target(args={"TOKEN": None})
    assert digest(root, t, env={"TOKEN": "a"}).digest != digest(root, t, env={"TOKEN": "b"}).digest


def test_a_linked_target_context_carries_the_linked_digest(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "lib").mkdir()
    (root / "lib" / "Dockerfile").write_text(f"FROM {BASE}\n")
    targets = {"app-amd64": target(contexts={"lib": "target:lib-amd64"}), "lib-amd64": target(context="lib")}
    first = inputs.compute(root, targets, ["app-amd64"], resolver(), inputs.StatCache(), {})["app-amd64"]
    (root / "lib" / "new").write_text("x")
    second = inputs.compute(root, targets, ["app-amd64"], resolver(), inputs.StatCache(), {})["app-amd64"]
    assert first.digest and second.digest and first.digest != second.digest


def test_the_stat_cache_skips_unchanged_files_and_is_written_atomically(tmp_path: Path) -> None:
    root = project(tmp_path)
    old = 1_000_000_000
    os.utime(root / "app" / "main.sh", (old, old))
    cache = inputs.StatCache()
    first = digest(root, cache=cache).digest
    path = tmp_path / "bake" / inputs.STAT_CACHE
    cache.save(path, [str(root / "app")])
    loaded = inputs.StatCache.load(path)
    assert str(root / "app" / "main.sh") in loaded.entries
    loaded.entries[str(root / "app" / "main.sh")][4] = "f" * 64     # a cached digest is trusted while stat matches
    assert digest(root, cache=loaded).digest != first
    assert not list(path.parent.glob("*.tmp"))


def test_dockerfile_parsing_continuations_heredocs_and_stage_names() -> None:
    df = dockerfile.parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a AS One\nRUN <<EOF\nFROM evil\nEOF\n"
                          "FROM one\nCOPY --from=0 / /\nRUN --mount=type=bind,from=img:1,target=/m `\n  true\n")
    ext = dockerfile.externals(df, ["linux/amd64"], {})
    assert ext.images == ("docker/dockerfile:1", "a", "img:1") and not ext.unseen
    assert dockerfile.expand("${A:-x}/${B-y}${C:+z}", {"B": ""}) == "x/"
    assert dockerfile.externals(dockerfile.parse("FROM ${X%y}\n"), ["linux/amd64"], {}).unseen
    custom = dockerfile.externals(dockerfile.parse("# syntax=example/front:1\nFROM a\n"), ["linux/amd64"], {})
    assert custom.unseen == ("custom frontend example/front:1",)
