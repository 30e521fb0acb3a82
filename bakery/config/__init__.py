"""bakery.yaml: the records (:mod:`.model`), loading with overrides (:mod:`.load`), validation (:mod:`.validate`),
the bake variables (:mod:`.variables`) and importing images from bake or compose files evaluated by buildx (:mod:`.bake_import`).
Imports no wing and no Invoke."""

from bakery.config.load import load
from bakery.config.model import CONFIG_FILE, Builder, Cache, Config, Image, PlatformGroup, target_name
from bakery.config.validate import Validator, validate, validator_for
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG, bake_variables

__all__ = ["CONFIG_FILE", "Builder", "Cache", "Config", "Image", "PlatformGroup", "VAR_REGISTRY", "VAR_SCOPE",
           "VAR_TAG", "Validator", "bake_variables", "load", "target_name", "validate", "validator_for"]
