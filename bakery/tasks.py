"""The root collection: each wing's tasks, composed (``from bakery.tasks import ns``)."""

from __future__ import annotations

from invoke import Collection

from bakery.adopt.tasks import import_, init, schema_
from bakery.bench.tasks import bench
from bakery.build.tasks import build, check, generate, stitch
from bakery.clean.tasks import clean
from bakery.cli import DEFAULTS
from bakery.doctor.tasks import doctor, setup
from bakery.manifest.tasks import manifest
from bakery.release.tasks import release
from bakery.tags.tasks import tags


def _collection() -> Collection:
    coll = Collection(generate, build, check, stitch, setup, doctor, release, clean, bench, import_, init,
                      schema_, tags)
    coll.add_collection(manifest)
    coll.configure({"bakery": DEFAULTS})
    return coll


ns = _collection()
