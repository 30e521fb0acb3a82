"""clean: registry retention (snapshot -> pure plan -> execute -> validate) and local cleanup.

What to clean comes from bakery.yaml (:func:`targets`, :func:`policy_for`); :func:`plan_target` snapshots and plans
one repository (reads only), ``bakery.clean.execute.execute`` carries a plan out; :func:`plan` is the pure planner
over :class:`Snapshot` / :class:`Node` records; :func:`local_steps` / :func:`run_local` clean this machine. The
names load their module on first use, so importing the pure planner loads neither requests nor Invoke."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "Node": "bakery.clean.model",
    "Plan": "bakery.clean.model",
    "Policy": "bakery.clean.model",
    "Rule": "bakery.clean.model",
    "Snapshot": "bakery.clean.model",
    "plan": "bakery.clean.retention",
    "parse_policy": "bakery.clean.retention_config",
    "Target": "bakery.clean.policy",
    "policy_for": "bakery.clean.policy",
    "targets": "bakery.clean.policy",
    "RepoPlan": "bakery.clean.execute",
    "Outcome": "bakery.clean.execute",
    "plan_target": "bakery.clean.execute",
    "validate": "bakery.clean.repair",
    "take": "bakery.clean.snapshot",
    "local_steps": "bakery.clean.local",
    "run_local": "bakery.clean.local",
})
