"""The pre-trade seam: without a checker every order passes; with one, its verdicts
are what the callers get, and a checker that forgets an order is a fault."""

from types import SimpleNamespace

import pytest

from trading import pretrade


@pytest.fixture
def restore_checker():
    saved = pretrade.registered()
    yield
    pretrade.register(saved)


def _orders(*pks):
    return [SimpleNamespace(pk=pk) for pk in pks]


def test_without_a_checker_every_order_passes(restore_checker):
    pretrade.register(None)
    verdicts = pretrade.check(_orders(1, 2), stage="approve", actor=None)
    assert {pk: v.status for pk, v in verdicts.items()} == {1: "approved", 2: "approved"}


def test_the_registered_checker_decides_in_one_batch(restore_checker):
    calls = []

    def checker(orders, *, stage, actor):
        calls.append(([o.pk for o in orders], stage))
        return {
            1: pretrade.Verdict("approved"),
            2: pretrade.Verdict(
                "rejected", failed=("R1",), message="On the firm's restricted list."
            ),
        }

    pretrade.register(checker)
    verdicts = pretrade.check(_orders(1, 2), stage="release", actor=None)
    assert calls == [([1, 2], "release")]
    assert verdicts[1].passes and not verdicts[2].passes
    assert verdicts[2].failed == ("R1",)


def test_a_checker_that_forgets_an_order_is_refused(restore_checker):
    pretrade.register(lambda orders, *, stage, actor: {1: pretrade.APPROVED})
    with pytest.raises(RuntimeError, match=r"no verdict on orders \[2\]"):
        pretrade.check(_orders(1, 2), stage="approve", actor=None)


def test_an_unknown_stage_is_refused(restore_checker):
    with pytest.raises(ValueError, match="Unknown pre-trade stage"):
        pretrade.check(_orders(1), stage="lunch", actor=None)
