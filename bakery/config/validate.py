"""Validation of bakery.yaml into a :class:`Config`.

Every problem becomes one line ``<file>:<line>: <key.path>: <what is wrong> (<suggestion>)``; all problems
are collected and reported together, and nothing is written when there is any. Later sections (``release:``,
``retention:``) take a :func:`validator_for` the same file, with the same line numbers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bakery.config import attest
from bakery.config.lines import KeyLines
from bakery.config.model import (ARG_RE, BUILDER_KEYS, CACHE_KEYS, CACHE_OPTIONS, CACHE_REQUIRED, CACHE_SECRETS,
                                 CACHE_TYPES, DRIVERS, GROUP_KEYS, GROUP_RE,
                                 IMAGE_KEYS, IMPLICIT_BUILDER, NODE_KEYS, PASSTHROUGH_ATTRS,
                                 RESERVED_GROUPS, TOP_KEYS, Builder, BuilderNode, Cache, Config, Image, PlatformGroup,
                                 shown as _shown, suggest, target_name)
from bakery.errors import ConfigError, ConfigErrors
from bakery.oci.platforms import PlatformError, parse_platform
from bakery.oci.reference import (NAME_RE, PATH_COMPONENT_RE, InvalidReference, check_name_prefix, check_path,
                                  check_tag)


MAX_STRING = 65_536        # one value (a build arg or label may be long; nothing real is longer)
MAX_PATH = 1_024           # a path in the repository


class Validator:
    def __init__(self, root: Path, source: str, lines: KeyLines) -> None:
        self.root = root
        self.source = source
        self.lines = lines
        self.errors: list[ConfigError] = []

    def err(self, key: str, message: str) -> None:
        line = self.lines.at(key)
        self.errors.append(ConfigError(f"{self.source}:{line}" if line else self.source, key, message))

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.err(key, f"expected a mapping, got {type(value).__name__} {_shown(value)}")
            return {}
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    self.err(f"{key}.{k}" if key else str(k), f"unknown key {k!r}; {suggest(str(k), allowed)}")
        return dict(value)

    def string(self, value: Any, key: str, *, required: bool = False, limit: int = MAX_STRING) -> str | None:
        """A string value (numbers are taken as written), at most ``limit`` characters and without NUL."""
        if value is None:
            if required:
                self.err(key, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.err(key, f"expected a string, got {type(value).__name__} {_shown(value)}")
            return None
        text = str(value)
        if len(text) > limit:
            self.err(key, f"is {len(text)} characters long; at most {limit} are allowed")
            return None
        if "\0" in text:
            self.err(key, "contains a NUL character")
            return None
        return text

    def path(self, value: Any, key: str, *, required: bool = False) -> str | None:
        """A path inside the repository: relative, and still inside once symlinks are resolved."""
        text = self.string(value, key, required=required, limit=MAX_PATH)
        if text is None:
            return None
        if os.path.isabs(text):
            self.err(key, f"{text!r} is absolute; give a path relative to {self.root}")
            return None
        try:
            resolved = (self.root / text).resolve()
        except (OSError, RuntimeError) as exc:
            self.err(key, f"{text!r} cannot be resolved ({exc})")
            return None
        if resolved != self.root.resolve() and self.root.resolve() not in resolved.parents:
            self.err(key, f"{text!r} leads outside the repository ({resolved})")
            return None
        return text

    def choice(self, value: Any, key: str, choices: tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.err(key, f"{_shown(value)} is not one of {', '.join(choices)}; {suggest(str(value), choices)}")
            return default
        return str(value)

    def string_map(self, value: Any, key: str, *, allow_null: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.mapping(value, key).items():
            sub = f"{key}.{k}"
            if v is None and allow_null:
                out[str(k)] = None
            elif isinstance(v, bool):
                out[str(k)] = "true" if v else "false"
            elif isinstance(v, (str, int, float)):
                out[str(k)] = str(v)
            else:
                self.err(sub, f"expected a string, got {type(v).__name__} {_shown(v)}")
        return out

    def string_list(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, list):
            self.err(key, f"expected a list, got {type(value).__name__} {_shown(value)}")
            return []
        out = []
        for i, v in enumerate(value):
            s = self.string(v, f"{key}[{i}]")
            if s is not None:
                out.append(s)
        return out

    # ----------------------------------------------------------------- sections
    def platform_groups(self, value: Any) -> dict[str, PlatformGroup]:
        groups: dict[str, PlatformGroup] = {}
        data = self.mapping(value, "platform_groups")
        if not data:
            self.err("platform_groups", "define at least one group, e.g. amd64: [linux/amd64]")
        owner: dict[str, str] = {}
        for name, spec in data.items():
            key = f"platform_groups.{name}"
            name = str(name)
            if not GROUP_RE.match(name):
                self.err(key, f"group name {name!r} must be lowercase letters, digits, '-' or '_'")
                continue
            if name in RESERVED_GROUPS:
                self.err(key, f"group name {name!r} is reserved by bake")
                continue
            builder = None
            if isinstance(spec, Mapping):
                spec = self.mapping(spec, key, GROUP_KEYS)
                builder = self.string(spec.get("builder"), f"{key}.builder")
                items, lkey = spec.get("platforms"), f"{key}.platforms"
            else:
                items, lkey = spec, key
            plats: list[str] = []
            for i, p in enumerate(self.string_list(items, lkey)):
                try:
                    norm = str(parse_platform(p))
                except PlatformError as exc:
                    self.err(f"{lkey}[{i}]", str(exc))
                    continue
                if norm in owner:
                    where = "twice in this group" if owner[norm] == name else f"also in group {owner[norm]!r}"
                    self.err(f"{lkey}[{i}]", f"platform {norm} is listed {where}; a platform belongs to one group")
                    continue
                owner[norm] = name
                plats.append(norm)
            if not plats and items is not None:
                if isinstance(items, list) and not items:
                    self.err(lkey, "is empty; list at least one platform")
            elif items is None:
                self.err(lkey, "is required: a list of platforms")
            groups[name] = PlatformGroup(name, tuple(plats), builder)
        return groups

    def cache(self, value: Any) -> Cache:
        data = self.mapping(value, "cache", CACHE_KEYS)
        d = Cache()
        ctype = self.choice(data.get("type"), "cache.type", CACHE_TYPES, d.type)
        mode = self.choice(data.get("mode"), "cache.mode", ("min", "max"), d.mode)
        scope = self.string(data.get("scope"), "cache.scope") or d.scope
        fallback = data.get("fallback_scope", d.fallback_scope)
        fallback = None if fallback in (None, False, "") else self.string(fallback, "cache.fallback_scope")
        for k, v in (("cache.scope", scope), ("cache.fallback_scope", fallback)):
            if v is not None:
                try:
                    check_tag(v)
                except InvalidReference as exc:
                    self.err(k, f"{exc} (the scope becomes part of the cache ref's tag)")
        ref = self.string(data.get("ref"), "cache.ref") or d.ref
        for needed in ("{repository}", "{group}"):
            if needed not in ref:
                self.err("cache.ref", f"{ref!r} must contain {needed}: one cache ref per image and group, "
                                      "so groups never overwrite each other's cache")
        ignore = data.get("ignore_error", False)
        if not isinstance(ignore, bool):
            self.err("cache.ignore_error", f"expected true or false, got {_shown(ignore)}")
            ignore = False
        options = self.cache_options(ctype, data.get("options"))
        return Cache(ctype, scope, fallback, mode, self.string(data.get("dir"), "cache.dir") or d.dir, ref, ignore,
                     options)

    def cache_options(self, ctype: str, value: Any) -> dict[str, str]:
        """``cache.options``: the attributes the backend takes, as strings; credentials are refused (they would
        be written into the bake file: the environment carries them)."""
        options = self.string_map(value, "cache.options")
        allowed = CACHE_OPTIONS.get(ctype, ())
        for key, v in options.items():
            if key in CACHE_SECRETS:
                self.err(f"cache.options.{key}", f"a credential never goes into bakery.yaml or the bake file; "
                                                 f"buildx reads it from the environment ({CACHE_SECRETS[key]})")
            elif key not in allowed:
                self.err(f"cache.options.{key}", f"cache type {ctype} takes no {key!r}; "
                                                 + (suggest(key, allowed) if allowed else "it takes no options"))
            elif "," in v or "=" in v or "\n" in v:
                self.err(f"cache.options.{key}", f"{_shown(v)}: a value cannot hold ',', '=' or a newline")
        for key in CACHE_REQUIRED.get(ctype, ()):
            if key not in options:
                self.err("cache.options", f"cache type {ctype} needs options.{key}")
        return options

    def positive_int(self, value: Any, key: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.err(key, f"expected a whole number >= 1, got {_shown(value)}")
            return None
        return value

    def platform_list(self, value: Any, key: str) -> tuple[str, ...]:
        out = []
        for i, p in enumerate(self.string_list(value, key)):
            try:
                out.append(str(parse_platform(p)))
            except PlatformError as exc:
                self.err(f"{key}[{i}]", str(exc))
        return tuple(out)

    def builders(self, value: Any) -> dict[str, Builder]:
        out: dict[str, Builder] = {}
        for name, spec in self.mapping(value, "builders").items():
            name, key = str(name), f"builders.{name}"
            if not GROUP_RE.match(name):
                self.err(key, f"builder name {name!r} must be lowercase letters, digits, '-' or '_'")
                continue
            data = self.mapping(spec, key, BUILDER_KEYS)
            driver = self.choice(data.get("driver"), f"{key}.driver", DRIVERS, "docker")
            context = self.string(data.get("context"), f"{key}.context")
            endpoint = self.string(data.get("endpoint"), f"{key}.endpoint")
            if driver == "docker" and context is None:
                context = name if endpoint else None
            if driver == "remote" and not endpoint:
                self.err(f"{key}.endpoint", "is required for the remote driver, e.g. tcp://buildkitd:1234")
            nodes = []
            raw_nodes = data.get("nodes") or []
            if not isinstance(raw_nodes, list):
                self.err(f"{key}.nodes", f"expected a list, got {_shown(raw_nodes)}")
                raw_nodes = []
            if raw_nodes and driver == "docker":
                self.err(f"{key}.nodes", "the docker driver has exactly one node (its engine); use docker-container, "
                                         "remote or kubernetes for multi-node builders")
            for i, node in enumerate(raw_nodes):
                nkey = f"{key}.nodes[{i}]"
                nd = self.mapping(node, nkey, NODE_KEYS)
                nodes.append(BuilderNode(self.string(nd.get("context"), f"{nkey}.context"),
                                         self.string(nd.get("endpoint"), f"{nkey}.endpoint"),
                                         self.platform_list(nd.get("platforms"), f"{nkey}.platforms"),
                                         self.string_map(nd.get("driver_opts"), f"{nkey}.driver_opts")))
            out[name] = Builder(name, driver, context, endpoint,
                                self.string_map(data.get("driver_opts"), f"{key}.driver_opts"),
                                self.platform_list(data.get("platforms"), f"{key}.platforms"),
                                self.positive_int(data.get("max_parallel"), f"{key}.max_parallel"), tuple(nodes))
        out.setdefault(IMPLICIT_BUILDER, Builder())
        return out

    def image(self, name: str, value: Any, groups: Mapping[str, PlatformGroup]) -> Image | None:
        key = f"images.{name}"
        if not NAME_RE.match(name):
            self.err(key, f"image name {_shown(name)} must be lowercase letters and digits separated by _ or - "
                          "(it names bake targets and groups; the repository may differ: `repository:`)")
            return None
        if name in groups or name in RESERVED_GROUPS:
            self.err(key, f"image name {name!r} is also a platform group name; bake groups would collide")
            return None
        data = self.mapping(value, key, IMAGE_KEYS)
        context = self.path(data.get("context"), f"{key}.context", required=True)
        if context is None:
            return None
        ctx_path = (self.root / context)
        if not ctx_path.is_dir():
            self.err(f"{key}.context", f"directory {context!r} does not exist (relative to {self.root})")
            return None
        context = Path(os.path.relpath(ctx_path.resolve(), self.root.resolve())).as_posix()
        dockerfile = self.string(data.get("dockerfile"), f"{key}.dockerfile") or "Dockerfile"
        inline = isinstance(data.get("bake"), Mapping) and "dockerfile-inline" in data["bake"]
        if not inline and not (ctx_path / dockerfile).is_file():
            self.err(f"{key}.dockerfile", f"{(Path(context) / dockerfile).as_posix()!r} does not exist "
                                          "(dockerfile is relative to the context)")
        repository = self.string(data.get("repository"), f"{key}.repository") or name
        try:
            check_path(repository, "repository")
        except InvalidReference as exc:
            self.err(f"{key}.repository" if "repository" in data else key, str(exc))
        sel = data.get("platform_groups")
        if sel is None:
            chosen = list(groups)
        else:
            chosen = []
            for i, g in enumerate(self.string_list(sel, f"{key}.platform_groups")):
                if g not in groups:
                    self.err(f"{key}.platform_groups[{i}]",
                             f"group {g!r} is not defined in platform_groups; {suggest(g, list(groups))}")
                elif g not in chosen:
                    chosen.append(g)
            if isinstance(sel, list) and not sel:
                self.err(f"{key}.platform_groups", "is empty; omit it to build for every group")
        args = self.string_map(data.get("args"), f"{key}.args", allow_null=True)
        for a in args:
            if not ARG_RE.match(a):
                self.err(f"{key}.args.{a}", f"build arg name {a!r} is not a valid ARG name")
        test = data.get("test")
        test_cmd: tuple[str, ...] | None = None
        if test is not None:
            test_cmd = tuple(self.string_list(test, f"{key}.test"))
        bake = self.mapping(data.get("bake"), f"{key}.bake", PASSTHROUGH_ATTRS)
        provenance, sbom, attests = attest.level(data, f"{key}.", self.err)
        if "attest" in data and "attest" in bake:
            self.err(f"{key}.bake.attest", f"{key}.attest is given too; keep the entries in {key}.attest")
        return Image(name=name, context=context, dockerfile=dockerfile, platform_groups=tuple(chosen),
                     repository=repository, target=self.string(data.get("target"), f"{key}.target"), args=args,
                     labels=self.string_map(data.get("labels"), f"{key}.labels"), test=test_cmd, bake=bake,
                     provenance=provenance, sbom=sbom, attest=attests)


def validate(data: Any, root: Path, source: str, lines: KeyLines | None = None) -> Config:
    """Turn a parsed document into a Config, or raise ConfigErrors listing every problem."""
    v = Validator(root, source, lines or KeyLines())
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", f"expected a mapping at the top level, got {type(data).__name__}")
    v.mapping(data, "", TOP_KEYS)
    registry, mirrors = _registries(v, data.get("registry"))
    groups = v.platform_groups(data.get("platform_groups"))
    images: dict[str, Image] = {}
    img_data = v.mapping(data.get("images"), "images")
    if not img_data:
        v.err("images", "define at least one image, e.g. api: {context: services/api}")
    for name, spec in img_data.items():
        img = v.image(str(name), spec, groups)
        if img is not None:
            images[img.name] = img
    _check_target_names(v, images)
    tag = v.string(data.get("tag"), "tag") or "latest"
    inter = v.string(data.get("intermediate_tag"), "intermediate_tag") or "{tag}-{group}"
    for name, value in (("tag", tag),):
        try:
            check_tag(value)
        except InvalidReference as exc:
            v.err(name, str(exc))
    if "{group}" not in inter or "{tag}" not in inter:
        v.err("intermediate_tag", f"{inter!r} must contain {{tag}} and {{group}}")
    formats = tuple(v.string_list(data.get("formats"), "formats")) or ("json",)
    for i, f in enumerate(formats):
        if f not in ("json", "hcl"):
            v.err(f"formats[{i}]", f"{f!r} is not json or hcl")
    prov, sbom, attests = attest.level(data, "", v.err)
    provenance = "min" if prov is None else (prov if isinstance(prov, str) else None)
    bake_dir = v.path(data.get("bake_dir"), "bake_dir") or "bake"
    cache = v.cache(data.get("cache"))
    builders = v.builders(data.get("builders"))
    default_builder = v.string(data.get("default_builder"), "default_builder") or IMPLICIT_BUILDER
    if default_builder not in builders:
        v.err("default_builder", f"builder {default_builder!r} is not defined in builders; "
                                 f"{suggest(default_builder, list(builders))}")
    for g in groups.values():
        if g.builder is not None and g.builder not in builders:
            v.err(f"platform_groups.{g.name}.builder",
                  f"builder {g.builder!r} is not defined in builders; {suggest(g.builder, list(builders))}")
    fanout = v.positive_int(data.get("fanout"), "fanout")
    skip = data.get("skip", True)
    if not isinstance(skip, bool):
        v.err("skip", f"expected true or false, got {skip!r}")
    labels = v.string_map(data.get("labels"), "labels")
    if v.errors:
        raise ConfigErrors(v.errors)
    return Config(root=root, source=source, registry=registry, platform_groups=groups, images=images, cache=cache,
                  tag=tag, intermediate_tag=inter, bake_dir=bake_dir, formats=formats,
                  provenance=provenance, sbom=bool(sbom), attest=attests,
                  labels=labels, builders=builders, default_builder=default_builder, fanout=fanout, raw=dict(data),
                  skip=skip is not False, mirrors=mirrors,
                  lines=v.lines)


def _registries(v: Validator, value: Any) -> tuple[str, tuple[str, ...]]:
    """``registry``: one name prefix, or a list of them: the first is where builds push (and the cache lives), the
    others get a copy of every published index (the mirrors)."""
    if isinstance(value, list):
        names = v.string_list(value, "registry")
        if not names and not v.errors:
            v.err("registry", "an empty list: name at least one registry")
        keys = [f"registry[{i}]" for i in range(len(names))]
    else:
        names = [v.string(value, "registry", required=True) or ""]
        keys = ["registry"]
    for key, name in zip(keys, names):
        if name:
            try:
                check_name_prefix(name)
            except InvalidReference as exc:
                v.err(key, str(exc))
    if len(set(names)) != len(names):
        v.err("registry", "a registry is listed twice")
    return (names[0] if names else ""), tuple(names[1:])


def _check_target_names(v: Validator, images: Mapping[str, Image]) -> None:
    seen: dict[str, str] = {}
    for img in images.values():
        for g in img.platform_groups:
            t = target_name(img.name, g)
            if t in seen:
                v.err(f"images.{img.name}", f"target name {t!r} is produced twice ({seen[t]} and {img.name}/{g}); "
                                            "rename the image or the group")
            seen[t] = f"{img.name}/{g}"


def validator_for(config: Config) -> Validator:
    """A validator for a later section (``release:``, ``retention:``): same file, same line numbers."""
    return Validator(config.root, config.source, config.lines)
