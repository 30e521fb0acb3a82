"""adopt: bringing a repository to bakery: ``init`` (a first commented bakery.yaml from its Dockerfiles or its
bake/compose files), ``schema`` (bakery.yaml's JSON Schema for editors), and moving an existing bake or compose
setup over: the ``images:`` section derived from the files (evaluated by buildx, see
:mod:`bakery.config.bake_import`), printed as YAML or written into bakery.yaml."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "images_yaml": "bakery.adopt.derive", "section": "bakery.adopt.derive", "spec_for": "bakery.adopt.derive",
    "write_into": "bakery.adopt.derive",
    "Draft": "bakery.adopt.init", "dockerfiles": "bakery.adopt.init", "render": "bakery.adopt.init",
    "schema": "bakery.adopt.schema", "schema_text": "bakery.adopt.schema",
})
