"""tags: the tags, labels and push decision of a build from its CI event, with docker/metadata-action's rules
(``tags:`` in bakery.yaml; parity: docs/tags.md). ``event`` reads the event from the environment, ``rules`` parses
rules and flavor, ``compute`` applies them, ``settings`` reads the section, ``plan`` puts it together for build,
stitch and ``bakery tags``."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "Event": "bakery.tags.event",
    "GitFacts": "bakery.tags.event",
    "from_environment": "bakery.tags.event",
    "Rule": "bakery.tags.rules",
    "Flavor": "bakery.tags.rules",
    "parse_rule": "bakery.tags.rules",
    "parse_flavor": "bakery.tags.rules",
    "Tags": "bakery.tags.compute",
    "compute": "bakery.tags.compute",
    "TagSettings": "bakery.tags.settings",
    "EventTags": "bakery.tags.plan",
    "decide": "bakery.tags.plan",
    "resolve": "bakery.tags.plan",
})
