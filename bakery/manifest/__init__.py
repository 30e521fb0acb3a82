"""manifest: multi-arch indexes by hand over the registry API (``manifest.create``/``annotate``/``push``/
``inspect``/``rm``): local drafts of an index, checked and pushed; nothing here needs docker."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "Draft": "bakery.manifest.drafts", "create_draft": "bakery.manifest.drafts", "push_draft": "bakery.manifest.drafts",
    "load_draft": "bakery.manifest.drafts", "save_draft": "bakery.manifest.drafts",
})
