"""Doctor's verdicts from gathered facts (pure): which groups this builder can build, and the fix when not."""

from __future__ import annotations

from pathlib import Path

from bakery.config import Builder, Config, validate
from bakery.docker import BuilderInfo, EngineInfo
from bakery.doctor.checks import BuilderFacts, Facts, assess, can_build, qemu_handler

ENGINE = EngineInfo("26.1.5", "containerd", "linux/amd64")
BUILDER = BuilderInfo("default", "docker", "running", ("linux/amd64", "linux/arm64"), "v0.13.2")


def config(tmp_path: Path, groups: dict[str, list[str]]) -> Config:
    (tmp_path / "c").mkdir(exist_ok=True)
    (tmp_path / "c" / "Dockerfile").write_text("FROM scratch\n")
    return validate({"registry": "127.0.0.1:5000/x", "platform_groups": groups, "images": {"a": {"context": "c"}}},
                    tmp_path, "bakery.yaml")


EMULATORS = frozenset({"qemu-arm"})


def facts(engine: EngineInfo | None = ENGINE, info: BuilderInfo | None = BUILDER, error: str = "",
          **kw: object) -> Facts:
    bf = BuilderFacts(Builder(), engine if error == "" else None, error, info, "linux/amd64", True)
    base: dict[str, object] = dict(buildx="0.13.1", emulators=EMULATORS, registry="http://127.0.0.1:5000/v2/",
                                   registry_error=None, builders={"default": bf}, engine=engine, engine_error="")
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def test_native_builder_listed_and_emulated_platforms_are_buildable() -> None:
    bf = facts().builders["default"]
    assert can_build("linux/amd64", bf, EMULATORS) == (True, "native")
    assert can_build("linux/arm64", bf, EMULATORS) == (True, "builder")
    assert can_build("linux/arm/v7", bf, EMULATORS) == (True, "emulated (qemu-arm)")
    assert can_build("linux/riscv64", bf, EMULATORS) == (False, "")


def test_a_remote_builder_gets_no_credit_for_this_machines_qemu() -> None:
    bf = BuilderFacts(Builder("far", "remote", endpoint="tcp://b:1234"), None, "",
                      BuilderInfo("far", "remote", "running", ("linux/arm64",), "v0.13"), "linux/arm64", False)
    assert can_build("linux/arm/v7", bf, EMULATORS) == (False, "")
    assert can_build("linux/arm64", bf, EMULATORS) == (True, "native")


def test_qemu_handler_names_follow_qemu_user_static() -> None:
    assert [qemu_handler(p) for p in ("linux/arm64", "linux/arm/v7", "linux/386", "linux/mips64le")] == \
        ["qemu-aarch64", "qemu-arm", "qemu-i386", "qemu-mips64el"]


def test_a_group_without_handler_fails_with_the_setup_fix(tmp_path: Path) -> None:
    checks = {c.name: c for c in assess(config(tmp_path, {"riscv": ["linux/riscv64"]}), facts())}
    group = checks["group riscv"]
    assert not group.ok and group.detail == "cannot build linux/riscv64"
    assert group.fix.startswith("run `invoke setup` to register QEMU handlers (qemu-riscv64;")
    assert not checks["emulation"].ok and "qemu-riscv64" in checks["emulation"].fix


def test_another_os_needs_a_native_node_not_qemu(tmp_path: Path) -> None:
    checks = {c.name: c for c in assess(config(tmp_path, {"win": ["windows/amd64"]}), facts())}
    assert checks["group win"].fix == "add a builder node that runs windows/amd64 natively (QEMU cannot emulate another OS)"
    assert checks["emulation"].ok


def test_classic_image_store_is_flagged_with_the_daemon_json_fix(tmp_path: Path) -> None:
    f = facts(engine=EngineInfo("26.1.5", "overlay2", "linux/amd64"))  # the current context's engine
    store = {c.name: c for c in assess(config(tmp_path, {"amd64": ["linux/amd64"]}), f)}["image store"]
    assert not store.ok and "containerd-snapshotter" in store.fix


def test_unreachable_engine_and_registry_are_reported_with_fixes(tmp_path: Path) -> None:
    f = facts(engine=None, info=None, error="cannot reach the Docker engine", engine_error="cannot reach",
              registry_error="GET http://127.0.0.1:5000/v2/: cannot connect")
    checks = {c.name: c for c in assess(config(tmp_path, {"amd64": ["linux/amd64"]}), f)}
    assert not checks["engine"].ok and "make stack" in checks["engine"].fix
    assert not checks["registry"].ok and "cannot connect" in checks["registry"].detail
    assert not checks["builder default"].ok
