"""Cache backends and their options on the real stack: the registry cache with ``image-manifest``/``oci-mediatypes``
built and pushed for real; gha, s3 and azblob (which cannot run here) generated and read back by this buildx's
``--print`` (the check ``bakery generate`` runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bakery.oci.registry import Registry
from tests.integration.seed import private_registry
from tests.support.project import one_image

pytestmark = pytest.mark.stack
Cli = Callable[..., subprocess.CompletedProcess[str]]


def project(root: Path, prefix: str, cache: dict[str, object]) -> Path:
    return one_image(root, prefix, "RUN echo cached > /c\n", cache=cache)


def test_a_registry_cache_with_image_manifest_is_pushed_as_an_oci_image(bakery_cli: Cli, tmp_path: Path,
                                                                          prefix: str) -> None:
    root = project(tmp_path, prefix, {"type": "registry",
                                      "options": {"image-manifest": True, "oci-mediatypes": True}})
    bakery_cli(root, "build", "--push", "--tag", "t")
    record = json.loads((root / "bake" / "results.json").read_text())["targets"]["app-amd64"]
    assert record["steps"] == 2 and 0 <= record["cached"] <= 2 and record["seconds"] > 0   # FROM and RUN
    assert record["sizes"]["linux/amd64"] > 100_000                                       # busybox and a layer
    host, name = prefix.split("/", 1)
    cache = Registry(host, insecure=True).get_manifest(f"{name}/app", "cache-amd64-main")
    assert cache.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert cache.json["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0"


@pytest.mark.parametrize(("cache", "entry"), [
    ({"type": "gha", "options": {"version": "2"}}, "type=gha,scope=app-amd64-${BAKERY_CACHE_SCOPE},mode=max,version=2"),
    ({"type": "s3", "options": {"region": "eu-west-1", "bucket": "ci-cache"}},
     "type=s3,name=app-amd64-${BAKERY_CACHE_SCOPE},mode=max,bucket=ci-cache,region=eu-west-1"),
    ({"type": "azblob", "options": {"account_url": "https://acct.blob.core.windows.net"}},
     "type=azblob,name=app-amd64-${BAKERY_CACHE_SCOPE},mode=max,account_url=https://acct.blob.core.windows.net"),
])
def test_cloud_cache_backends_are_generated_as_this_buildx_reads_them(bakery_cli: Cli, tmp_path: Path, prefix: str,
                                                                       cache: dict[str, object], entry: str) -> None:
    root = project(tmp_path, prefix, cache)
    bakery_cli(root, "generate")                      # checked with `docker buildx bake --print`
    target = json.loads((root / "bake" / "docker-bake.json").read_text())["target"]["app-amd64"]
    assert target["cache-to"] == [entry]


@pytest.mark.parametrize(("cache", "message"), [
    ({"type": "s3", "options": {"region": "eu-west-1"}}, "cache.options: cache type s3 needs options.bucket"),
    ({"type": "s3", "options": {"region": "r", "bucket": "b", "secret_access_key": "x"}},
     "cache.options.secret_access_key: a credential never goes into bakery.yaml"),
    ({"type": "registry", "options": {"bucket": "b"}}, "cache.options.bucket: cache type registry takes no 'bucket'"),
])
def test_a_bad_cache_option_is_one_line_naming_the_key(bakery_cli: Cli, tmp_path: Path, prefix: str,
                                                        cache: dict[str, object], message: str) -> None:
    root = project(tmp_path, prefix, cache)
    failed = bakery_cli(root, "generate", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr and message in failed.stderr
    assert not (root / "bake" / "docker-bake.json").exists()


def test_outside_ci_a_build_reads_the_shared_scope_and_writes_its_own(bakery_cli: Cli, tmp_path: Path,
                                                                       prefix: str) -> None:
    root = project(tmp_path, prefix, {"type": "registry"})
    bakery_cli(root, "build", "--push", "--tag", "ci")                  # CI: writes the shared scope, main
    local = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS", "GITLAB_CI")}
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", "mine", "--no-skip", "-v"],
                          cwd=root, capture_output=True, text=True, env={**local, "USER": "dev"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BAKERY_CACHE_SCOPE=local-dev" in proc.stderr
    host, name = prefix.split("/", 1)
    tags = Registry(host, insecure=True).tags(f"{name}/app")
    assert {"cache-amd64-main", "cache-amd64-local-dev"} <= set(tags)
    assert "importing cache manifest from " + f"{prefix}/app:cache-amd64-main" in proc.stderr   # read the shared one


def test_without_push_rights_a_build_reads_the_cache_and_writes_none(bakery_cli: Cli, tmp_path: Path) -> None:
    with private_registry(htpasswd=("ci", "secret")) as reg:             # and no credentials for it here
        root = project(tmp_path, f"{reg.host}/acme", {"type": "registry"})
        built = bakery_cli(root, "build", env={"DOCKER_CONFIG": str(tmp_path / "no-credentials")})
        assert f"note: no push rights to {reg.host}/acme ({reg.host} needs a login (docker login {reg.host})): " \
               "building without writing the cache (it is still read)" in built.stdout
        client = Registry(reg.host, insecure=True, credentials=("ci", "secret"))
        assert client.tags("acme/app") == []
