"""oci: image references, platforms, media types, the registry client (the only place that builds registry URLs),
index entries and the untag placeholder. Imports no wing, no Invoke and no docker: what it knows comes from the
OCI distribution and image specs and from registry 2.8's behaviour."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "Reference": "bakery.oci.reference", "parse_reference": "bakery.oci.reference",
    "split_domain": "bakery.oci.reference", "InvalidReference": "bakery.oci.reference",
    "Platform": "bakery.oci.platforms", "parse_platform": "bakery.oci.platforms", "is_emulated": "bakery.oci.platforms",
    "OCI_INDEX": "bakery.oci.media", "OCI_MANIFEST": "bakery.oci.media", "MANIFEST_TYPES": "bakery.oci.media",
    "Registry": "bakery.oci.registry", "Manifest": "bakery.oci.registry", "registry_for": "bakery.oci.registry",
    "digest_of": "bakery.oci.registry",
    "make_index": "bakery.oci.index", "index_entries": "bakery.oci.index",
    "untag": "bakery.oci.untag", "untag_manifest": "bakery.oci.untag",
})
