"""Which bake failures are the registry's passing 5xx (retried once) and which are real (never retried)."""

from __future__ import annotations

from bakery.build.fanout import transient

# recorded from buildx 0.13.1 against registry 2.8 (a HEAD that read a tag link while it was being written)
REGISTRY_500 = [
    "#28 ERROR: unexpected status from HEAD request to http://127.0.0.1:5000/v2/acme/worker/manifests/t-arm: "
    "500 Internal Server Error",
    "ERROR: unexpected status from HEAD request to http://127.0.0.1:5000/v2/acme/worker/manifests/t-arm: "
    "500 Internal Server Error",
]


def test_a_registry_500_on_push_is_transient() -> None:
    assert transient(REGISTRY_500) == "500 Internal Server Error"


def test_a_failing_run_step_is_not_transient() -> None:
    assert transient(['#10 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',
                      "ERROR: failed to solve: process did not complete successfully: exit code: 3"]) == ""


def test_a_500_in_build_output_that_is_not_an_error_line_is_ignored() -> None:
    assert transient(["#5 0.3 curl: server said 500 Internal Server Error", "ERROR: failed to solve: exit code: 1"]) == ""


def _t(name: str, group: str) -> "TargetInfo":
    from bakery.build.bakefile import TargetInfo
    return TargetInfo(name, name.rsplit("-", 1)[0], group, ("linux/amd64",))


def test_targets_sharing_a_context_go_to_separate_rounds_in_order() -> None:
    from bakery.build.fanout import rounds
    targets = [_t("api-amd64", "amd64"), _t("worker-amd64", "amd64"), _t("static-amd64", "amd64"),
               _t("api-arm", "arm"), _t("worker-arm", "arm")]
    contexts = {"api-amd64": "svc/api", "api-arm": "svc/api", "worker-amd64": "svc/worker", "worker-arm": "svc/worker",
                "static-amd64": "svc/static"}
    assert [[t.name for t in r] for r in rounds(targets, contexts)] == [
        ["api-amd64", "worker-amd64", "static-amd64"], ["api-arm", "worker-arm"]]


def test_targets_with_their_own_contexts_stay_in_one_bake(tmp_path) -> None:
    from bakery.build.fanout import jobs_for
    from bakery.config.model import Builder
    targets = [_t("api-amd64", "amd64"), _t("worker-arm", "arm")]
    jobs = jobs_for({"default": targets}, {"default": Builder()}, tmp_path, "1",
                    {"api-amd64": "svc/api", "worker-arm": "svc/worker"})
    assert [[t.name for t in j.targets] for j in jobs] == [["api-amd64", "worker-arm"]]
