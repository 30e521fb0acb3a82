"""The manifest media types, in a module of their own so that the pure planner (:mod:`bakery.clean.retention`)
can know them without loading the registry client (requests). :mod:`bakery.oci.registry` re-exports them."""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(MANIFEST_TYPES)
# every manifest media type a registry may hold, also those bakery never asks for: what clean may walk and
# delete (anything else is a blob, and registry 2.8 answers a manifest DELETE of a blob digest by unlinking it)
ALL_MANIFEST_TYPES = frozenset({*MANIFEST_TYPES, "application/vnd.oci.artifact.manifest.v1+json",
                                "application/vnd.docker.distribution.manifest.v1+json",
                                "application/vnd.docker.distribution.manifest.v1+prettyjws"})
