"""Errors: every restudy error says where, what is allowed and what was got, in one line."""

from __future__ import annotations

import pytest

from restudy.errors import DataError, RestudyError, StoreError, StudyError, UnsafeFileError


def test_message_names_the_place_the_allowed_values_and_the_bad_value():
    e = StudyError("unknown scale", where="--scale", got="tiny", allowed=("smoke", "small", "paper"))
    assert str(e) == "--scale: unknown scale; allowed: smoke, small, paper; got: 'tiny'"
    assert (e.where, e.got, e.allowed) == ("--scale", "tiny", "smoke, small, paper")


def test_parts_not_given_are_left_out():
    assert str(RestudyError("nothing to run")) == "nothing to run"
    assert str(RestudyError("bad", got=0)) == "bad; got: 0"  # a falsy value is still shown
    assert str(RestudyError("bad", allowed="a number in (0, 1)")) == "bad; allowed: a number in (0, 1)"


@pytest.mark.parametrize("cls", [StudyError, DataError, StoreError, UnsafeFileError])
def test_every_kind_is_a_restudy_error(cls):
    """The CLI maps RestudyError to exit status 2; each kind must be caught by that one handler."""
    with pytest.raises(RestudyError, match="where: what"):
        raise cls("what", where="where")
