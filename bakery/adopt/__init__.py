"""adopt: moving an existing bake or compose setup to bakery: the ``images:`` section derived from the files
(evaluated by buildx, see :mod:`bakery.config.bake_import`), printed as YAML or written into bakery.yaml."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "images_yaml": "bakery.adopt.derive", "section": "bakery.adopt.derive", "spec_for": "bakery.adopt.derive",
    "write_into": "bakery.adopt.derive",
})
