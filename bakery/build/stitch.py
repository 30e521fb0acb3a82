"""The one stitcher of build and release: per-group results in one repository -> one OCI index per image.

``build --push`` and ``stitch`` PUT the index under the public tag as soon as it is made
(:func:`stitch_images`); ``release`` makes the same index with its annotations and attestation policy
(:func:`stitch_parts`) and publishes it later, all or nothing (:mod:`bakery.release.publish`). Both read the group
results as :class:`bakery.oci.index.Part` records, so the index bytes, and with them the digest, come from one
place: the same parts, annotations and attestation policy give the same bytes in build and release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bakery.build import bakefile
from bakery.config.model import Config, target_name
from bakery.errors import RegistryError
from bakery.manifest.drafts import check_platforms, select_entries
from bakery.oci.index import Part, holds_exactly, make_index, platforms_of, read_part
from bakery.oci.registry import OCI_INDEX, Registry, digest_of, registry_for


@dataclass(frozen=True)
class Stitch:
    """An index made from per-group results, not pushed yet."""

    raw: bytes
    digest: str
    entries: tuple[dict[str, Any], ...]     # what the index lists (before make_index drops repeated digests)
    dropped: tuple[str, ...]                # entries left out, one line each (attestation policy)
    sources: tuple[str, ...]                # the per-group digests it was made from

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(platforms_of(self.entries))


def stitch_parts(parts: Sequence[Part], annotations: Mapping[str, str] | None = None,
                 attestations: str | None = None) -> Stitch:
    """The index for ``parts`` in group order (pure).

    ``attestations`` ``keep``/``drop`` selects entries the way a release does (never a dangling attestation, one
    image per platform); None carries every entry the group results hold, as ``build --push`` always has."""
    entries = [e for p in parts for e in p.entries]
    dropped: tuple[str, ...] = ()
    if attestations is not None:
        selection = select_entries(entries, attestations)
        check_platforms(selection.entries)
        entries, dropped = list(selection.entries), selection.dropped
    raw = make_index([dict(e) for e in entries], dict(annotations) if annotations else None)
    return Stitch(raw, digest_of(raw), tuple(entries), dropped, tuple(p.digest for p in parts))


@dataclass(frozen=True)
class Stitched:
    """An index pushed under its tags; ``digest`` is what the registry answered the PUT with."""

    repository: str
    tags: tuple[str, ...]
    digest: str
    index: Stitch


def stitch_image(registry: Registry, repository: str, tags: Sequence[str],
                 sources: Sequence[tuple[str, Sequence[str]]], known: Mapping[str, Part] | None = None) -> Stitched:
    """Merge per-group results into one index and push it under every tag.

    ``sources`` is ``[(digest, expected platforms)]`` in group order; a group whose result does not hold
    exactly its expected platforms is an error before anything is pushed. ``known``: results already read (by
    digest: the skip's lookups read those they reuse), not fetched again.
    """
    parts = []
    for digest, expected in sources:
        part = (known or {}).get(digest) or read_part(registry, repository, digest)
        if not holds_exactly(part.platforms, expected):
            raise RegistryError(f"{repository}@{digest}: holds platforms {part.platforms}, expected {list(expected)}")
        parts.append(part)
    made = stitch_parts(parts)
    digest = ""
    for tag in tags:
        digest = registry.put_manifest(repository, tag, made.raw, OCI_INDEX)
    return Stitched(repository, tuple(tags), digest, made)


# --------------------------------------------------------------------------- build --push and `stitch`
@dataclass
class Stitching:
    """What stitching the public tag did: per image its ``results.json`` record, and why images were left."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan_lines(config: Config, images: Sequence[str], tag: str, registry_host: str,
               also: Sequence[str] = ()) -> list[str]:
    """The dry run of :func:`stitch_images`: one ``would stitch`` line per image."""
    lines = []
    for image in images:
        img = config.images[image]
        parts = " ".join(f"{registry_host}/{img.repository}:{bakefile.intermediate_tag(config, g, tag)}"
                         for g in img.platform_groups)
        more = "".join(f" (also :{t})" for t in also if t != tag)
        lines.append(f"would stitch {registry_host}/{img.repository}:{tag}{more} <- {parts}")
    return lines


def stitch_images(config: Config, images: Sequence[str], tag: str, registry_host: str,
                  built: Mapping[str, str | None], also: Sequence[str] = (),
                  known: Mapping[str, Part] | None = None,
                  client: tuple[Registry, str] | None = None) -> Stitching:
    """One index per image under the public tag, from all of the image's groups: those in ``built`` (target name
    -> digest bake reported) as built now, the others from their per-group refs pushed earlier. An image with a
    group missing is left for later, with a note. The images are stitched concurrently (their own requests);
    ``known``: per-group results already read, by digest; ``client``: the registry client and prefix of
    ``registry_host`` when the caller has one."""
    registry, prefix = client or registry_for(registry_host)
    done = Stitching()

    def one(image: str) -> tuple[str, dict[str, Any] | str]:
        img = config.images[image]
        repo = f"{prefix}/{img.repository}" if prefix else img.repository
        sources: list[tuple[str, Sequence[str]]] = []
        missing = []
        for group in img.platform_groups:
            name = target_name(img.name, group)
            digest = built[name] if name in built else registry.head_manifest(
                repo, bakefile.intermediate_tag(config, group, tag))
            if not digest:
                missing.append(bakefile.intermediate_tag(config, group, tag))
            else:
                sources.append((digest, config.platform_groups[group].platforms))
        if missing:
            return image, (f"{image}: not stitched yet: {', '.join(missing)} missing in {repo} "
                           f"(build those groups with the same --tag, then `invoke stitch --tag {tag}`)")
        made = stitch_image(registry, repo, list(dict.fromkeys([tag, *also])), sources, known)
        return image, {"ref": f"{registry_host}/{img.repository}:{tag}", "digest": made.digest,
                       "tags": list(made.tags),
                       "platforms": list(made.index.platforms), "sources": list(made.index.sources)}
    if not images:
        return done
    with ThreadPoolExecutor(min(8, len(images)), thread_name_prefix="stitch") as pool:
        for image, made in pool.map(one, images):            # in the images' order, whatever finished first
            if isinstance(made, str):
                done.notes.append(made)
            else:
                done.images[image] = made
    return done
