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
