"""The buildx version record: what decides which buildx ``docker buildx`` runs is its key (pure, on files)."""

from __future__ import annotations

import os
from pathlib import Path

from bakery.docker import buildx_fingerprint


def machine(tmp_path: Path) -> dict[str, str]:
    """A PATH with a `docker`, a client config dir and a home, all under ``tmp_path``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\n")
    (bin_dir / "docker").chmod(0o755)
    (tmp_path / "config" / "cli-plugins").mkdir(parents=True)
    return {"PATH": str(bin_dir), "DOCKER_CONFIG": str(tmp_path / "config"), "HOME": str(tmp_path)}


def test_the_same_machine_gives_the_same_key(tmp_path: Path) -> None:
    env = machine(tmp_path)
    assert buildx_fingerprint("docker", env) == buildx_fingerprint("docker", env) != ""


def test_a_plugin_dropped_into_the_client_config_changes_the_key(tmp_path: Path) -> None:
    env = machine(tmp_path)
    before = buildx_fingerprint("docker", env)
    (tmp_path / "config" / "cli-plugins" / "docker-buildx").write_bytes(b"\x7fELF")
    assert buildx_fingerprint("docker", env) != before


def test_an_upgraded_plugin_changes_the_key(tmp_path: Path) -> None:
    env = machine(tmp_path)
    plugin = tmp_path / "config" / "cli-plugins" / "docker-buildx"
    plugin.write_bytes(b"0.13.1")
    before = buildx_fingerprint("docker", env)
    plugin.write_bytes(b"0.29.1 and longer")
    assert buildx_fingerprint("docker", env) != before


def test_an_extra_plugin_dir_named_in_config_json_is_part_of_the_key(tmp_path: Path) -> None:
    env = machine(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    (tmp_path / "config" / "config.json").write_text(f'{{"cliPluginsExtraDirs": ["{extra}"]}}')
    before = buildx_fingerprint("docker", env)
    (extra / "docker-buildx").write_bytes(b"\x7fELF")
    os.utime(tmp_path / "config" / "config.json")
    assert str(extra / "docker-buildx") in buildx_fingerprint("docker", env)
    assert buildx_fingerprint("docker", env) != before


def test_another_client_config_dir_changes_the_key(tmp_path: Path) -> None:
    env = machine(tmp_path)
    (tmp_path / "other").mkdir()
    assert buildx_fingerprint("docker", env) != buildx_fingerprint("docker", {**env, "DOCKER_CONFIG":
                                                                              str(tmp_path / "other")})


def test_no_docker_on_path_gives_no_key_so_the_version_is_probed(tmp_path: Path) -> None:
    assert buildx_fingerprint("docker", {"PATH": str(tmp_path), "HOME": str(tmp_path)}) == ""
