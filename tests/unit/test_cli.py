"""bakery.cli: the errors a task ends with, as GitHub Actions annotations."""

from __future__ import annotations

from bakery.cli import github_annotations
from bakery.errors import BakeryError, ConfigError, ConfigErrors


def test_each_config_problem_is_an_error_on_its_file_and_line() -> None:
    exc = ConfigErrors([ConfigError("bakery.yaml:3", "cache.options", "cache type s3 needs options.region"),
                        ConfigError("conf/bakery.yaml", "", "expected a mapping")])
    assert github_annotations(exc) == [
        "::error file=bakery.yaml,line=3,title=bakery.yaml::cache.options: cache type s3 needs options.region",
        "::error file=conf/bakery.yaml,title=bakery.yaml::expected a mapping"]


def test_any_other_error_is_one_annotation_with_newlines_escaped() -> None:
    assert github_annotations(BakeryError("build failed: 100%\nsecond line")) == [
        "::error title=bakery::build failed: 100%25%0Asecond line"]
