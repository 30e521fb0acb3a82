"""bakery.yaml validation: every bad input gives one line naming file, line, key path and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.config import load
from bakery.errors import BakeryError, ConfigError, ConfigErrors

GOOD = """\
registry: 127.0.0.1:5000/acme
platform_groups:
  amd64: [linux/amd64]
  arm: [linux/arm64, linux/arm/v7]
images:
  api: {context: services/api}
  worker:
    context: services/worker
    target: runtime
    args: {GREETING: "hi ${USER}"}
  static: {context: services/static, platform_groups: [amd64]}
"""


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)   # messages name the file relative to where bakery runs


def project(tmp_path: Path, text: str) -> Path:
    for name in ("api", "worker", "static"):
        (tmp_path / "services" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "services" / name / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "bakery.yaml"
    path.write_text(text)
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(BakeryError) as info:
        load(project(tmp_path, text))
    err = info.value
    return [str(e) for e in err.errors] if isinstance(err, ConfigErrors) else [str(err)]


def test_the_contract_example_loads(tmp_path: Path) -> None:
    cfg = load(project(tmp_path, GOOD))
    assert list(cfg.images) == ["api", "worker", "static"]
    assert cfg.images["api"].platform_groups == ("amd64", "arm")
    assert cfg.images["static"].platform_groups == ("amd64",)
    assert cfg.images["worker"].dockerfile == "Dockerfile"
    assert cfg.images["worker"].args == {"GREETING": "hi ${USER}"}
    assert cfg.platform_groups["arm"].platforms == ("linux/arm64", "linux/arm/v7")


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("  static: {context: services/static, platform_groups",
                                             "  static: {context: services/static, platfrom_groups"))
    assert msg == ("bakery.yaml:11: images.static.platfrom_groups: unknown key 'platfrom_groups'; "
                   "did you mean platform_groups?")


def test_unknown_top_level_key_names_its_line(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD + "platfrom_groups: {}\n")
    assert msg.startswith("bakery.yaml:12: platfrom_groups: unknown key")
    assert "did you mean platform_groups?" in msg


def test_bad_platform_suggests_a_known_architecture(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("linux/arm64,", "linux/arm65,"))
    assert msg.startswith("bakery.yaml:4: platform_groups.arm[0]: platform 'linux/arm65'")
    assert "did you mean 'linux/arm64'?" in msg


@pytest.mark.parametrize("bad, why", [
    ("linux", "is not os/arch"), ("lunix/amd64", "unknown os 'lunix'"), ("linux/arm/v9", "unknown variant 'v9'"),
    ("linux//v7", "is not os/arch"),
])
def test_malformed_platforms_are_rejected(tmp_path: Path, bad: str, why: str) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("[linux/amd64]", f"[{bad}]"))
    assert why in msg and "platform_groups.amd64[0]" in msg


def test_a_platform_in_two_groups_is_rejected(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("[linux/arm64, linux/arm/v7]", "[linux/arm64, linux/amd64]"))
    assert "platform_groups.arm[1]: platform linux/amd64 is listed also in group 'amd64'" in msg


def test_undefined_group_is_named_with_a_suggestion(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("platform_groups: [amd64]", "platform_groups: [amd46]"))
    assert msg == ("bakery.yaml:11: images.static.platform_groups[0]: group 'amd46' is not defined in "
                   "platform_groups; did you mean amd64?")


def test_missing_context_directory(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("services/api}", "services/nope}"))
    assert msg.startswith("bakery.yaml:6: images.api.context: directory 'services/nope' does not exist")


def test_missing_dockerfile(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("target: runtime", "target: runtime\n    dockerfile: Dockerfile.prod"))
    assert "images.worker.dockerfile: 'services/worker/Dockerfile.prod' does not exist" in msg


@pytest.mark.parametrize("registry, why", [
    ("127.0.0.1:5000/Acme", "uppercase is not allowed"),
    ("http://127.0.0.1:5000/acme", "is not a valid host[:port]"),
    ("127.0.0.1:5000/acme/", "without a trailing '/'"),
    ("127.0.0.1:5000/ac--me_", "is not valid"),
    ("-bad.example:5000/x", "is not a valid host[:port]"),
])
def test_registry_must_follow_the_reference_grammar(tmp_path: Path, registry: str, why: str) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("127.0.0.1:5000/acme", registry))
    assert msg.startswith("bakery.yaml:1: registry: ") and why in msg


def test_a_registry_list_is_the_first_registry_and_its_mirrors(tmp_path: Path) -> None:
    cfg = load(project(tmp_path, GOOD.replace("registry: 127.0.0.1:5000/acme",
                                              "registry: [127.0.0.1:5000/acme, ghcr.io/acme, docker.io/acme]")))
    assert (cfg.registry, cfg.mirrors) == ("127.0.0.1:5000/acme", ("ghcr.io/acme", "docker.io/acme"))


@pytest.mark.parametrize("registries, message", [
    ("[127.0.0.1:5000/acme, ghcr.io/Acme]", "registry[1]: "),
    ("[127.0.0.1:5000/acme, 127.0.0.1:5000/acme]", "a registry is listed twice"),
    ("[]", "an empty list"),
])
def test_each_registry_of_a_list_is_checked(tmp_path: Path, registries: str, message: str) -> None:
    msgs = errors_of(tmp_path, GOOD.replace("registry: 127.0.0.1:5000/acme", f"registry: {registries}"))
    assert any(message in m for m in msgs), msgs


def test_image_name_must_be_a_repository_component(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("  api: {", "  API: {"))
    assert "images.API: image name 'API' must be lowercase" in msg


def test_image_named_like_a_group_is_rejected(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("  api: {", "  arm: {"))
    assert "images.arm: image name 'arm' is also a platform group name" in msg


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD.replace("  arm: [linux/arm64, linux/arm/v7]", "  arm: [linux/arm64, linux/arm/v7"))
    assert msg.startswith("bakery.yaml:5: YAML syntax error:")


def test_duplicate_keys_are_not_silently_merged(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD + "registry: 127.0.0.1:5000/other\n")
    assert msg == "bakery.yaml:12: registry: duplicate key (the earlier value would be silently lost)"


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("linux/arm64,", "linux/arm65,").replace("services/api}", "services/nope}")
    assert len(errors_of(tmp_path, text)) == 2


def test_bad_arg_name_and_non_string_value(tmp_path: Path) -> None:
    msgs = errors_of(tmp_path, GOOD.replace('{GREETING: "hi ${USER}"}', '{"1BAD": x, OK: [1]}'))
    assert any("images.worker.args.1BAD: build arg name '1BAD' is not a valid ARG name" in m for m in msgs)
    assert any("images.worker.args.OK: expected a string, got list [1]" in m for m in msgs)


def test_cache_type_must_be_known(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, GOOD + "cache: {type: registy}\n")
    assert "cache.type: 'registy' is not one of registry, local, inline, none, gha, s3, azblob; did you mean registry?" in msg


def test_cache_ref_must_separate_images_and_groups(tmp_path: Path) -> None:
    msgs = errors_of(tmp_path, GOOD + "cache: {ref: '{registry}/cache:{scope}'}\n")
    assert any(m.startswith("bakery.yaml:12: cache.ref:") and "must contain {repository}" in m for m in msgs)
    assert any("must contain {group}" in m for m in msgs)


def test_numbers_and_booleans_in_args_become_strings(tmp_path: Path) -> None:
    cfg = load(project(tmp_path, GOOD.replace('{GREETING: "hi ${USER}"}', "{PORT: 8080, DEBUG: true, NONE: null}")))
    assert cfg.images["worker"].args == {"PORT": "8080", "DEBUG": "true", "NONE": None}


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load(project(tmp_path, GOOD), {"registry": "Bad Registry"})
    assert "registry: registry 'Bad Registry'" in str(info.value)


def test_overrides_merge_deeply(tmp_path: Path) -> None:
    cfg = load(project(tmp_path, GOOD), {"cache": {"type": "local"}, "registry": "localhost:5000/x"})
    assert cfg.cache.type == "local" and cfg.registry == "localhost:5000/x"


def test_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "bakery.yaml")
    assert "not found in" in str(info.value)
