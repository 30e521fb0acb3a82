"""build: bake files generated from bakery.yaml, ``docker buildx bake`` run per builder (concurrently), digests
recorded, and per-group results stitched into one multi-arch index per image (the stitcher release shares).
Functions named like their modules (``build``, ``generate``, ``stitch``) are taken from those modules."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "BuildRequest": "bakery.build.build",
    "BuildResult": "bakery.build.build",
    "explain_failure": "bakery.build.build",
    "overlay_files": "bakery.build.build",
    "stitch_tag": "bakery.build.build",
    "write_results": "bakery.build.build",
    "render_files": "bakery.build.generate",
    "compare_with_print": "bakery.build.generate",
    "TargetInfo": "bakery.build.bakefile",
    "intermediate_tag": "bakery.build.bakefile",
    "Stitch": "bakery.build.stitch",
    "Stitched": "bakery.build.stitch",
    "stitch_image": "bakery.build.stitch",
    "stitch_images": "bakery.build.stitch",
    "stitch_parts": "bakery.build.stitch",
})
