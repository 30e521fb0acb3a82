"""Attestation keys and ``build --print`` on the real stack: ``--print`` shows what bake would build with every
override applied and builds nothing; an SBOM entry in bakery.yaml puts an SBOM attestation manifest into the
pushed index (BuildKit runs a scanner image: the stack is offline, so the test pushes a tiny one of its own)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bakery.capabilities import csv_entry
from bakery.oci.index import is_attestation
from bakery.oci.registry import Registry
from tests.conftest import docker
from tests.support.project import BASE, one_image

pytestmark = pytest.mark.stack
Cli = Callable[..., subprocess.CompletedProcess[str]]
SPDX = "https://spdx.dev/Document"
# a scanner by BuildKit's SBOM protocol: one SPDX document (in an in-toto statement) per scanned filesystem
SCAN = """\
name=$(basename "$BUILDKIT_SCAN_SOURCE")
count=$(find "$BUILDKIT_SCAN_SOURCE" -type f | wc -l)
cat > "$BUILDKIT_SCAN_DESTINATION/$name.spdx.json" <<JSON
{"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://spdx.dev/Document", "subject": [],
 "predicate": {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "$name",
  "documentNamespace": "https://example.invalid/bakery-test/$name",
  "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: bakery-test-scanner"]},
  "comment": "$count files", "packages": []}}
JSON
"""


def entries(value: list[Any]) -> list[dict[str, Any]]:
    """attest/output entries as objects, whichever form this buildx printed them in (CSV before 0.20)."""
    return [csv_entry(e) if isinstance(e, str) else {k: str(v) for k, v in e.items()} for e in value]


def test_print_shows_what_bake_would_build_with_every_override_and_builds_nothing(bakery_cli: Cli, tmp_path: Path,
                                                                                  prefix: str) -> None:
    root = one_image(tmp_path / "repo", prefix, 'ARG X=unset\nRUN echo "$X" > /x\n', sbom=True)
    (root / "bake").mkdir()
    (root / "bake" / "docker-bake.override.json").write_text('{"target": {"app-amd64": {"labels": {"by": "hand"}}}}')
    shown = bakery_cli(root, "build", "--print", "--push", "--set", "*.labels.team=core", "--build-arg", "X=1",
                       "--provenance", "mode=max", env={"BAKERY_TAG": "v7"})
    target = json.loads(shown.stdout)["target"]["app-amd64"]
    assert target["tags"] == [f"{prefix}/app:v7-amd64"]
    assert (target["args"], target["labels"]) == ({"X": "1"}, {"by": "hand", "team": "core"})
    assert [(e["type"], e.get("mode")) for e in entries(target["attest"])] == [("provenance", "max"), ("sbom", None)]
    assert entries(target["output"]) == [{"type": "image", "push": "true"}]
    host, name = prefix.split("/", 1)
    assert Registry(host, insecure=True).tags(f"{name}/app") == []         # nothing pushed
    assert not (root / "bake" / "results.json").exists()


def test_print_refuses_dry_run_in_one_line(bakery_cli: Cli, tmp_path: Path, prefix: str) -> None:
    failed = bakery_cli(one_image(tmp_path / "repo", prefix), "build", "--print", "--dry-run", check=False)
    assert failed.returncode == 1 and failed.stderr.strip().splitlines() == [
        "bakery: --print and --dry-run exclude each other: --print builds nothing and its JSON is bake's"]


def test_a_bad_sbom_value_is_one_line_and_nothing_is_written(bakery_cli: Cli, tmp_path: Path, prefix: str) -> None:
    root = one_image(tmp_path / "repo", prefix)
    (root / "bakery.yaml").write_text(f"registry: {prefix}\nplatform_groups: {{amd64: [linux/amd64]}}\nimages:\n"
                                      "  app:\n    context: app\n    sbom: 'yes'\n")
    failed = bakery_cli(root, "build", "--push", "--tag", "t", check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines() == ["bakery: bakery.yaml:6: images.app.sbom: expected true or false, "
                                                  "got 'yes'"]
    assert not (root / "bake").exists()


@pytest.fixture
def scanner(tmp_path: Path, prefix: str) -> str:
    """A tiny SBOM scanner image pushed under this test's prefix."""
    ctx = tmp_path / "scanner"
    ctx.mkdir()
    (ctx / "scan.sh").write_text(SCAN)
    (ctx / "Dockerfile").write_text(f'FROM {BASE}\nCOPY scan.sh /scan.sh\nENTRYPOINT ["/bin/sh", "/scan.sh"]\n')
    ref = f"{prefix}/scanner:1"
    docker("buildx", "build", "--provenance=false", "--push", "-t", ref, str(ctx))
    return ref


def predicates(host: str, repo: str, tag: str) -> dict[str, Any]:
    """predicate type -> predicate of every attestation in the index ``repo:tag``."""
    client = Registry(host, insecure=True)
    found: dict[str, Any] = {}
    for entry in client.get_manifest(repo, tag).json["manifests"]:
        if is_attestation(entry):
            for layer in client.get_manifest(repo, entry["digest"]).json["layers"]:
                kind = (layer.get("annotations") or {}).get("in-toto.io/predicate-type", "")
                found[kind] = json.loads(client.get_blob(repo, layer["digest"]))["predicate"]
    return found


def test_an_sbom_entry_pushes_an_sbom_attestation_manifest_with_the_index(bakery_cli: Cli, tmp_path: Path,
                                                                          prefix: str, scanner: str) -> None:
    root = one_image(tmp_path / "repo", prefix, attest=[f"type=sbom,generator={scanner}"])
    bakery_cli(root, "build", "--push", "--tag", "t")
    host, name = prefix.split("/", 1)
    found = predicates(host, f"{name}/app", "t")
    assert found[SPDX]["creationInfo"]["creators"][0] == "Tool: bakery-test-scanner"
    assert any(kind.startswith("https://slsa.dev/provenance/") for kind in found)   # provenance min, as before


def test_sbom_true_is_buildkits_default_scanner_or_one_line_naming_it(bakery_cli: Cli, tmp_path: Path,
                                                                      prefix: str) -> None:
    root = one_image(tmp_path / "repo", prefix, sbom=True)
    built = bakery_cli(root, "build", "--push", "--tag", "t", check=False)
    if built.returncode == 0:                    # a builder that reaches Docker Hub: the default scanner ran
        host, name = prefix.split("/", 1)
        assert SPDX in predicates(host, f"{name}/app", "t")
        return
    last = built.stderr.strip().splitlines()[-1]    # offline (this stack): the scanner image cannot be resolved
    assert last.startswith("bakery: build failed: target app-amd64") and "docker/buildkit-syft-scanner" in last
    assert last.endswith('name it: attest: ["type=sbom,generator=REF"]')
    assert "Traceback" not in built.stderr
