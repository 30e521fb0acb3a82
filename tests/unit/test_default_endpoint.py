"""The current context's endpoint read without the docker CLI, when no context store is involved (pure, on files)."""

from __future__ import annotations

from pathlib import Path

from bakery.docker import DEFAULT_HOST, default_endpoint


def test_docker_host_wins_over_any_context(tmp_path: Path) -> None:
    assert default_endpoint({"DOCKER_HOST": "tcp://10.0.0.2:2376", "DOCKER_CONTEXT": "other",
                             "HOME": str(tmp_path)}) == "tcp://10.0.0.2:2376"


def test_no_context_anywhere_is_the_default_socket(tmp_path: Path) -> None:
    assert default_endpoint({"HOME": str(tmp_path)}) == DEFAULT_HOST


def test_the_default_context_named_in_config_json_is_the_default_socket(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"currentContext": "default"}')
    assert default_endpoint({"DOCKER_CONFIG": str(tmp_path)}) == DEFAULT_HOST


def test_another_current_context_is_left_to_the_cli(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"currentContext": "bakery-current"}')
    assert default_endpoint({"DOCKER_CONFIG": str(tmp_path)}) == ""


def test_a_docker_context_variable_is_left_to_the_cli(tmp_path: Path) -> None:
    assert default_endpoint({"DOCKER_CONTEXT": "remote", "HOME": str(tmp_path)}) == ""


def test_an_unreadable_config_json_is_left_to_the_cli(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    assert default_endpoint({"DOCKER_CONFIG": str(tmp_path)}) == ""
