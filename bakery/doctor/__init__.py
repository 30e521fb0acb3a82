"""doctor: what this machine can build and the fix for what it cannot (facts read, checks judged, the build
preflight), and what ``setup`` changes to make it build (builders, QEMU handlers)."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "Check": "bakery.doctor.checks", "assess": "bakery.doctor.checks", "preflight": "bakery.doctor.checks",
    "Facts": "bakery.doctor.facts", "BuilderFacts": "bakery.doctor.facts", "gather": "bakery.doctor.facts",
    "ensure": "bakery.doctor.provision", "register_qemu": "bakery.doctor.provision",
})
