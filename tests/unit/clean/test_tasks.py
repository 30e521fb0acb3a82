"""The clean task's output: the plan table, sizes and the progress line (bakery.cli.Progress)."""

from __future__ import annotations

import io
import re

from bakery.clean.model import DigestAction, Plan, Protection, TagAction
from bakery.clean.tasks import format_bytes, plan_table
from bakery.cli import Progress


# --- output ----------------------------------------------------------------------------------------


def sample_plan() -> Plan:
    idx, child, shared = ("sha256:" + c * 64 for c in "abc")
    return Plan(
        repository="acme/api",
        remove_tags=(TagAction("pr-1", idx, "rule 0 (pr-.*): keep_last 0", "delete-digest"),
                     TagAction("pr-2", shared, "rule 0 (pr-.*): keep_last 0", "retag-then-delete")),
        delete_digests=(DigestAction(idx, "tag pr-1 removed; nothing kept uses it", None, 1500),
                        DigestAction(child, f"child of deleted index {idx}", idx, 2_500_000)),
        protected=(Protection("cache-amd64-main", "default protect pattern cache-.*"),
                   Protection(shared, "shared with kept tag latest")),
        warnings=("sha256:" + "d" * 64 + " has no created time: never counted as older_than",),
        keep_tags=("cache-amd64-main", "latest"),
    )


def test_the_plan_table_says_what_why_and_how_much() -> None:
    plan = sample_plan()
    text = plan_table("127.0.0.1:5000/acme/api", plan, 4, 6, {"sha256:" + "b" * 64: "linux/arm64"})
    lines = text.splitlines()
    assert lines[0] == ("127.0.0.1:5000/acme/api: 4 tags, 6 manifests -> remove 2 tags, delete 2 manifests, "
                        "frees ~2.5 MB")
    assert lines[1].split() == ["ACTION", "WHAT", "FREES", "WHY"]
    assert re.search(r"remove tag pr-1 +rule 0 \(pr-\.\*\): keep_last 0; goes with its digest$", text, re.M)
    assert re.search(r"remove tag pr-2 +.*; untag only: shared with kept tag latest$", text, re.M)
    assert re.search(r"delete +sha256:bbbbbbbbbbbb linux/arm64 +2\.5 MB  child of deleted index "
                     r"sha256:aaaaaaaaaaaa$", text, re.M)
    assert re.search(r"protect +cache-amd64-main +default protect pattern cache-\.\*$", text, re.M)
    assert re.search(r"warning +sha256:dddddddddddd has no created time", text, re.M)
    assert lines[-1] == "  keep 2 tags: cache-amd64-main, latest"


def test_format_bytes_uses_decimal_units() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 2_500_000, 3 * 10**9)] == \
        ["0 B", "999 B", "1.0 kB", "2.5 MB", "3.0 GB"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    out = Tty()
    progress = Progress(out)
    progress.label = "repo"
    for done in range(4):
        progress("reading tags", done, 3)
    progress.end()
    assert out.getvalue().startswith("\r\x1b[Krepo: reading tags 0/3")
    assert "\r\x1b[Krepo: reading tags 3/3" in out.getvalue() and "\n" not in out.getvalue()


def test_progress_prints_a_line_per_finished_phase_in_logs() -> None:
    out = io.StringIO()
    progress = Progress(out, every=3600)
    for phase in ("reading tags", "reading manifests"):
        for done in range(6):
            progress(phase, done, 5)
    assert out.getvalue().splitlines() == ["reading tags 5/5", "reading manifests 5/5"]
