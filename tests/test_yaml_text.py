import pytest
import yaml

from studyval import yaml_text
from studyval.plan import plan_path

DOCUMENT = """
base: &base {n_resamples: 200, levels: [a, b]}
first: *base
second: *base
when: 2024-01-31
"""


def test_the_result_is_what_pyyaml_parses():
    for text in (DOCUMENT, plan_path("msk-aging").read_text(encoding="utf-8")):
        assert yaml_text.safe_load(text) == yaml.safe_load(text)


def test_a_caller_that_changes_its_copy_changes_no_later_result():
    first = yaml_text.safe_load(DOCUMENT)
    first["base"]["levels"].append("c")
    first["when"] = None
    again = yaml_text.safe_load(DOCUMENT)
    assert again == yaml.safe_load(DOCUMENT)
    # nodes an anchor shares stay shared within one copy, as PyYAML gives them
    assert again["first"] is again["second"] is again["base"]


def test_invalid_yaml_raises_on_every_call():
    for _ in range(2):
        with pytest.raises(yaml.YAMLError):
            yaml_text.safe_load("a: [1, 2\nb: 3")
