"""release: publish one version of every image as a set of tags on one multi-arch index, after every platform passed
its smoke test. :func:`release` runs the phases (plan, build, load, smoke, publish, mirror, report); the modules hold
them: ``settings`` (the ``release:`` section), ``git``, ``tags``, ``tagset`` (``release.tags`` or the ``tags:``
rules), ``plan``, ``smoke``, ``publish``, ``report``, ``run``. Names that are also module names (``settings``,
``publish``) are taken from their modules."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "release": "bakery.release.run",
    "ReleaseRequest": "bakery.release.plan",
    "ReleaseFailed": "bakery.release.plan",
    "ReleasePlan": "bakery.release.plan",
    "IndexPlan": "bakery.release.plan",
    "TagPlan": "bakery.release.tagset",
    "TagSource": "bakery.release.tagset",
    "plan_tags": "bakery.release.plan",
    "already_released": "bakery.release.plan",
    "reusable": "bakery.release.plan",
    "ReleaseSettings": "bakery.release.settings",
    "GitInfo": "bakery.release.git",
    "git_info": "bakery.release.git",
    "SmokeSpec": "bakery.release.smoke",
    "SmokeResult": "bakery.release.smoke",
    "run_smoke": "bakery.release.smoke",
    "publish_all": "bakery.release.publish",
    "ReleaseReport": "bakery.release.report",
    "render_report": "bakery.release.report",
    "write_report": "bakery.release.report",
    "Version": "bakery.release.tags",
    "TagOptions": "bakery.release.tags",
    "compute_tags": "bakery.release.tags",
    "parse_version": "bakery.release.tags",
})
