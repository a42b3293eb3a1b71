"""The domain's input rules for user-written text."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from domain import rules
from domain.errors import InvalidInput

ALLOWED_CONTROLS = "\t\n\r"


def test_the_forbidden_characters_are_exactly_the_control_characters_but_tab_and_line_ends() -> (
    None
):
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        forbidden = unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROLS
        assert (rules.FORBIDDEN_CONTROL.search(ch) is not None) == forbidden, hex(code)


@pytest.mark.parametrize("ch", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_text_with_a_control_character_anywhere_is_refused(ch: str) -> None:
    for value in (ch + "text", "te" + ch + "xt", "text" + ch):
        with pytest.raises(InvalidInput, match="control characters"):
            rules.text(value, "text", rules.TEXT_MAX)


def test_tab_line_ends_and_other_scripts_pass() -> None:
    value = "Line one\r\nLine two\twith a tab; اردو, 한국어, \u200b and \u00a0"
    assert rules.text(value, "text", rules.TEXT_MAX) == value
