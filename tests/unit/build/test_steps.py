"""bakery.build.steps: Dockerfile steps and cache hits per target, from bake's plain progress."""

from __future__ import annotations

from bakery.build.steps import StepCount

PLAIN = """\
#1 [internal] load local bake definitions
#2 [api-amd64 internal] load build definition from Dockerfile
#7 [api-amd64 1/3] FROM 127.0.0.1:5000/base/busybox:1.35@sha256:98c5
#10 [api-amd64 2/3] RUN echo hi > /x
#10 CACHED
#11 [api-arm 1/3] FROM 127.0.0.1:5000/base/busybox:1.35@sha256:98c5
#11 CACHED
#12 [api-amd64 3/3] COPY Dockerfile /d
#12 DONE 0.1s
#12 [api-amd64 3/3] COPY Dockerfile /d
"""


def test_steps_and_cache_hits_are_counted_per_target_once_each() -> None:
    count = StepCount()
    for line in PLAIN.splitlines(keepends=True):
        count.feed(line)
    assert count.of("api-amd64") == {"steps": 3, "cached": 1}
    assert count.of("api-arm") == {"steps": 1, "cached": 1}
    assert count.of("worker-amd64") is None           # no step named: nothing to say (tty progress)


def test_a_bake_of_one_target_names_no_target() -> None:
    count = StepCount()
    for line in ("#6 [1/2] FROM 127.0.0.1:5000/base/busybox:1.35\n", "#7 [2/2] RUN echo > /c\n", "#7 CACHED\n"):
        count.feed(line)
    assert count.of("app-amd64", alone=True) == {"steps": 2, "cached": 1}
    assert count.of("app-amd64") is None
