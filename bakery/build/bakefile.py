"""The bake model: Config -> a bake document (plain dicts), and its JSON and HCL writers.

Naming (documented in docs/bakefile.md):
- target ``<image>-<group>`` builds one image for one platform group; its tag is the per-group
  intermediate ref ``${BAKERY_REGISTRY}/<repository>:<intermediate_tag>``, never the public tag;
- bake groups: one per platform group, one per image, and ``default`` (everything);
- variables ``BAKERY_REGISTRY``, ``BAKERY_TAG``, ``BAKERY_CACHE_SCOPE`` (overridable from the environment, as bake does);
- cache: each target writes ``cache.ref`` for its own image and group (``mode=max``) and reads that ref plus the
  ``fallback_scope`` ref, so groups and branches never overwrite each other.

Every string that comes from the config is escaped (``${`` -> ``$${``, ``%{`` -> ``%%{``) because bake treats JSON
strings as templates too; JSON/HCL string escaping does the rest, so BuildKit receives exactly the config's value.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bakery.capabilities import Capabilities, csv_entry, version_string
from bakery.config import attest
from bakery.config.model import EXPORT_ONLY, Cache, Config, Image, target_name
from bakery.errors import BakeryError

from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG


class Expr(str):
    """A bake expression: written as ``"${...}"`` in JSON and as the bare expression in HCL."""


def escape(value: str) -> str:
    """Make a literal string survive bake's template evaluation unchanged."""
    return value.replace("${", "$${").replace("%{", "%%{")


def _esc_map(values: Mapping[str, str | None]) -> dict[str, str | None]:
    return {escape(k): (None if v is None else escape(v)) for k, v in values.items()}


def _template(pattern: str, **fields: str) -> str:
    """Fill ``{name}`` placeholders of a bakery template with (already bake-ready) strings."""
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in fields:
            raise BakeryError(f"unknown placeholder {{{key}}} in {pattern!r}; known: {', '.join(sorted(fields))}")
        return fields[key]
    return re.sub(r"\{([a-z_]+)\}", sub, escape(pattern).replace("$${", "\0")).replace("\0", "$${")


def intermediate_tag(config: Config, group: str, tag: str) -> str:
    """The per-group tag a target pushes to (``1.2.0-arm``), before stitching into the public tag."""
    return config.intermediate_tag.format(tag=tag, group=group)


def cache_ref(config: Config, image: Image, group: str, scope: str, registry: str) -> str:
    return _template(config.cache.ref, registry=registry, repository=image.repository, group=group,
                     image=image.name, scope=scope)


def _cache_attrs(config: Config, image: Image, group: str) -> dict[str, Any]:
    cache = config.cache
    reg = "${%s}" % VAR_REGISTRY
    extra = ",ignore-error=true" if cache.ignore_error else ""
    both, export = _options(cache)
    if cache.type == "none":
        return {}
    if cache.type == "inline":
        own = f"{reg}/{image.repository}:{_template(config.intermediate_tag, tag='${%s}' % VAR_TAG, group=group)}"
        return {"cache-from": [f"type=registry,ref={own}"], "cache-to": ["type=inline"]}
    if cache.type == "local":
        base = f"{escape(cache.dir)}/{image.repository.replace('/', '_')}-{group}"
        return {"cache-from": [f"type=local,src={base}"],
                "cache-to": [f"type=local,dest={base},mode={cache.mode}{export}{extra}"]}
    if cache.type in ("gha", "s3", "azblob"):
        return _named_cache(config, image, group, both, export + extra)
    own = cache_ref(config, image, group, "${%s}" % VAR_SCOPE, reg)
    cache_to = [f"type=registry,ref={own},mode={cache.mode}{export}{extra}"]
    if cache.fallback_scope is None:
        return {"cache-from": [f"type=registry,ref={own}"], "cache-to": cache_to}
    fallback = cache_ref(config, image, group, escape(cache.fallback_scope), reg)
    # one expression so that a build on the fallback scope itself does not import the same ref twice
    refs = ", ".join(json.dumps(f"type=registry,ref={r}") for r in (own, fallback))
    return {"cache-from": Expr("${distinct([%s])}" % refs),
            "cache-to": cache_to}


def _options(cache: Cache) -> tuple[str, str]:
    """``cache.options`` as CSV tails: (for cache-from and cache-to, for cache-to only)."""
    both = "".join(f",{k}={escape(v)}" for k, v in sorted(cache.options.items()) if k not in EXPORT_ONLY)
    export = "".join(f",{k}={escape(v)}" for k, v in sorted(cache.options.items()) if k in EXPORT_ONLY)
    return both, both + export


def _named_cache(config: Config, image: Image, group: str, both: str, to_tail: str) -> dict[str, Any]:
    """gha (``scope=``), s3 and azblob (``name=``): one cache per image, group and scope, as the registry cache."""
    cache = config.cache
    key = "scope" if cache.type == "gha" else "name"
    stem = f"{image.repository.replace('/', '-')}-{group}"
    own = f"type={cache.type},{key}={stem}-${{{VAR_SCOPE}}}{both}"
    cache_to = [f"type={cache.type},{key}={stem}-${{{VAR_SCOPE}}},mode={cache.mode}{to_tail}"]
    if cache.fallback_scope is None:
        return {"cache-from": [own], "cache-to": cache_to}
    fallback = f"type={cache.type},{key}={stem}-{escape(cache.fallback_scope)}{both}"
    return {"cache-from": Expr("${distinct([%s])}" % ", ".join(json.dumps(r) for r in (own, fallback))),
            "cache-to": cache_to}


def image_target(config: Config, image: Image, group: str) -> dict[str, Any]:
    plats = list(config.platform_groups[group].platforms)
    tag = "${%s}/%s:%s" % (VAR_REGISTRY, image.repository,
                           _template(config.intermediate_tag, tag="${%s}" % VAR_TAG, group=group))
    t: dict[str, Any] = {"context": escape(image.context), "dockerfile": escape(image.dockerfile)}
    if image.target:
        t["target"] = escape(image.target)
    t["platforms"] = plats
    t["tags"] = [tag]
    if image.args:
        t["args"] = _esc_map(image.args)
    labels = {**config.labels, **image.labels}
    if labels:
        t["labels"] = _esc_map(labels)
    t.update(_cache_attrs(config, image, group))
    t["attest"] = own_attest = [escape(e) for e in attest.entries(config, image)]
    for key, value in image.bake.items():
        t[key] = _escape_any(value)
    if "attest" in image.bake:
        t["attest"] = _attest(own_attest, _escape_any(image.bake["attest"]))
    if "contexts" in image.bake:
        t["contexts"] = {k: _linked(config, v, group) for k, v in t["contexts"].items()}
    return t


def _attest(own: list[str], extra: list[Any]) -> list[Any]:
    """Raw ``bake: {attest: [...]}`` entries (e.g. from an imported file) are added to bakery's entries; one of a
    type bakery has an entry for (provenance, sbom) replaces bakery's."""
    def kind(e: Any) -> Any:
        return (e if isinstance(e, Mapping) else csv_entry(str(e))).get("type")
    theirs = {kind(e) for e in extra}
    return [*(e for e in own if kind(e) not in theirs), *extra]


def _linked(config: Config, value: Any, group: str) -> Any:
    """A ``target:<image>`` named context builds that image's target in the same platform group."""
    if isinstance(value, str) and value.startswith("target:"):
        other = config.images.get(value[len("target:"):])
        if other is not None and group in other.platform_groups:
            return f"target:{target_name(other.name, group)}"
    return value


def _escape_any(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [_escape_any(v) for v in value]
    if isinstance(value, Mapping):
        return {escape(str(k)): _escape_any(v) for k, v in value.items()}
    return value


def check_supported(config: Config, caps: Capabilities | None) -> None:
    """Refuse attributes the installed buildx would silently drop (0.13.1 ignores unknown target attributes)."""
    if caps is None:
        return
    for image in config.images.values():
        for key in image.bake:
            if not caps.reads(key):
                raise BakeryError(f"{config.source}: images.{image.name}.bake.{key}: needs buildx >= "
                                  f"{caps.needs(key)}, this machine has {version_string(caps.version)} "
                                  "(it would silently drop it)")


def document(config: Config, caps: Capabilities | None = None) -> dict[str, Any]:
    """The whole bake document for a config: variables, groups and targets, in config order."""
    check_supported(config, caps)
    targets: dict[str, Any] = {}
    by_group: dict[str, list[str]] = {g: [] for g in config.platform_groups}
    by_image: dict[str, list[str]] = {}
    for image in config.images.values():
        for group in image.platform_groups:
            name = target_name(image.name, group)
            targets[name] = image_target(config, image, group)
            by_group[group].append(name)
            by_image.setdefault(image.name, []).append(name)
    groups: dict[str, Any] = {"default": {"targets": list(targets)}}
    groups.update({g: {"targets": t} for g, t in by_group.items() if t})
    groups.update({i: {"targets": t} for i, t in by_image.items()})
    return {
        "variable": {
            VAR_REGISTRY: {"default": escape(config.registry)},
            VAR_TAG: {"default": escape(config.tag)},
            VAR_SCOPE: {"default": escape(config.cache.scope)},
        },
        "group": groups,
        "target": targets,
    }


def select_targets(config: Config, groups: Sequence[str] = (), images: Sequence[str] = (),
                   names: Sequence[str] = ()) -> list[str]:
    """Targets for --group/--image filters (both empty: all) among those ``names`` select (bake's positional
    names, :func:`named_targets`; none: all); unknown names are an error with a suggestion."""
    from bakery.config.model import suggest
    chosen = set(named_targets(config, names)) if names else None
    for g in groups:
        if g not in config.platform_groups:
            raise BakeryError(f"--group {g!r} is not a platform group; {suggest(g, list(config.platform_groups))}")
    for i in images:
        if i not in config.images:
            raise BakeryError(f"--image {i!r} is not an image; {suggest(i, list(config.images))}")
    out = [target_name(img.name, g) for img in config.images.values() if not images or img.name in images
           for g in img.platform_groups if not groups or g in groups]
    out = [t for t in out if chosen is None or t in chosen]
    if not out:
        named = f" among {' '.join(names)}" if names else ""
        raise BakeryError(f"no target matches --group {list(groups)} --image {list(images)}{named} "
                          "(an image built only for other groups?)")
    return out


def named_targets(config: Config, names: Sequence[str]) -> list[str]:
    """What bake's positional names select in the generated file: a target (``api-amd64``), an image's group
    (``api``: all its targets), a platform group's (``arm``) or ``default`` (everything); a name that is none of
    them is an error with a suggestion."""
    from bakery.config.model import suggest
    every = {target_name(img.name, g): (img.name, g) for img in config.images.values() for g in img.platform_groups}
    out: list[str] = []
    for name in names:
        picked = [t for t, (image, group) in every.items()
                  if name in ("default", t, image, group)]
        if not picked:
            known = ["default", *config.images, *config.platform_groups, *every]
            raise BakeryError(f"target {name!r} is no target, image or platform group of this bake file; "
                              f"{suggest(name, known)}")
        out += [t for t in picked if t not in out]
    return out


@dataclass(frozen=True)
class TargetInfo:
    """What one target is, for the build, the stitcher and reports."""
    name: str
    image: str
    group: str
    platforms: tuple[str, ...]


def target_infos(config: Config, names: Iterable[str]) -> list[TargetInfo]:
    wanted = set(names)
    return [TargetInfo(target_name(img.name, g), img.name, g, config.platform_groups[g].platforms)
            for img in config.images.values() for g in img.platform_groups if target_name(img.name, g) in wanted]


# --------------------------------------------------------------------------- writers
def _escape_invisible(text: str) -> str:
    """\\u-escape control/format/separator/unassigned characters so that bake's JSON reader keeps them;
    printable unicode stays readable."""
    def esc(ch: str) -> str:
        if ch == "\ufeff":   # dropped by bake's JSON reader even when \\u-escaped; an HCL string keeps it
            return '${\\"\\\\ufeff\\"}'
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            return "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
        return "\\u%04x" % code
    return "".join(esc(ch) if ord(ch) > 0x7E and unicodedata.category(ch) in _INVISIBLE else ch for ch in text)


_INVISIBLE = frozenset({"Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Cc"})


def to_json(doc: Mapping[str, Any]) -> str:
    return _escape_invisible(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _hcl_string(value: str) -> str:
    """A quoted HCL string. HCL knows only \\n \\r \\t \\" \\\\ \\uNNNN \\UNNNNNNNN (no \\b or \\f); values
    are already template-escaped ($${, %%{), which HCL reads the same way as bake's JSON format does."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _HCL_ESCAPES:
            out.append(_HCL_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F or (code > 0x7E and unicodedata.category(ch) in _INVISIBLE):
            out.append("\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_HCL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _hcl_value(value: Any, indent: int) -> str:
    pad = "  " * indent
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, Expr):
        return value[2:-1]
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = ",\n".join(f"{pad}  {_hcl_value(v, indent + 1)}" for v in value)
        return f"[\n{inner},\n{pad}]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = "\n".join(f"{pad}  {_hcl_string(str(k))} = {_hcl_value(v, indent + 1)}" for k, v in value.items())
        return f"{{\n{inner}\n{pad}}}"
    raise TypeError(f"cannot write {type(value).__name__} to HCL")


def to_hcl(doc: Mapping[str, Any]) -> str:
    """Render the same document as HCL; ``docker buildx bake --print`` reads both identically."""
    out: list[str] = ["# Generated by bakery from bakery.yaml; edit that file, not this one.\n"]
    for kind in ("variable", "group", "target"):
        for name, body in doc.get(kind, {}).items():
            out.append(f"{kind} {_hcl_string(name)} {{\n")
            for key, value in body.items():
                attr = key if _IDENT.match(key) else _hcl_string(key)
                out.append(f"  {attr} = {_hcl_value(value, 1)}\n")
            out.append("}\n\n")
    return "".join(out).rstrip("\n") + "\n"
