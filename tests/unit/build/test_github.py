"""bakery.build.github: the step outputs and job summary a GitHub Actions job gets from build and stitch."""

from __future__ import annotations

import json
from pathlib import Path

from bakery.build.build import BuildResult
from bakery.build.github import append, outputs_text, summary_text

DIGEST = "sha256:" + "a" * 64


def result() -> BuildResult:
    return BuildResult("main", targets={"api-amd64": {"digest": "sha256:" + "b" * 64, "platforms": ["linux/amd64"],
                                                      "seconds": 12.5, "steps": 4, "cached": 3,
                                                      "sizes": {"linux/amd64": 1070235}}},
                       images={"api": {"ref": "ghcr.io/acme/api:main", "digest": DIGEST,
                                       "platforms": ["linux/amd64", "linux/arm64"], "tags": ["main", "sha-860c190"]}})


def parse(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT read as the runner reads it."""
    out, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            name, delim = line.split("<<", 1)
            out[name] = "\n".join(iter(lambda: next(lines), delim))
        else:
            name, _, value = line.partition("=")
            out[name] = value
    return out


def test_outputs_name_every_published_tag_and_digest_and_carry_the_metadata() -> None:
    got = parse(outputs_text(result(), "ghadelimiter_x"))
    assert got["tags"] == "ghcr.io/acme/api:main\nghcr.io/acme/api:sha-860c190"
    assert got["version"] == "main" and got["api-digest"] == DIGEST and got["digest"] == f"api={DIGEST}"
    assert json.loads(got["metadata"])["images"]["api"]["digest"] == DIGEST


def test_the_summary_is_a_table_of_images() -> None:
    text = summary_text(result())
    assert "| api | linux/amd64, linux/arm64 | `" + DIGEST + "` | `main`, `sha-860c190` |" in text
    assert "| api-amd64 | linux/amd64 | 12.5 | 3/4 steps | linux/amd64: 1.1 MB |" in text


def test_outside_github_actions_nothing_is_written(tmp_path: Path) -> None:
    assert append({"GITHUB_OUTPUT": str(tmp_path / "o")}, result()) == []
    assert not (tmp_path / "o").exists()


def test_in_github_actions_both_files_are_appended_to(tmp_path: Path) -> None:
    (tmp_path / "o").write_text("earlier=1\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "o"), "GITHUB_STEP_SUMMARY": str(tmp_path / "s")}
    assert append(env, result()) == [tmp_path / "o", tmp_path / "s"]
    assert parse((tmp_path / "o").read_text())["earlier"] == "1"
    assert (tmp_path / "s").read_text().startswith("### bakery build: `main`")
