"""The allocation engine: pure, deterministic, fair to within one lot."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.allocation import allocate_pro_rata

D = Decimal


def test_a_full_fill_gives_every_order_what_it_asked_for():
    assert allocate_pro_rata(D(300), {1: D(100), 2: D(200)}, lot=D(100)) == {1: D(100), 2: D(200)}


def test_the_residual_lot_goes_to_the_largest_remainder():
    # 700 of 1,000 asked (300, 300, 400), lots of 100: exact shares 210, 210, 280.
    shares = allocate_pro_rata(D(700), {1: D(300), 2: D(300), 3: D(400)}, lot=D(100))
    assert shares == {1: D(200), 2: D(200), 3: D(300)}


def test_ties_go_to_the_smaller_request_then_the_lower_id():
    shares = allocate_pro_rata(D(100), {7: D(100), 3: D(100)}, lot=D(100))
    assert shares == {3: D(100), 7: D(0)}


def test_an_odd_lot_fill_is_booked_whole():
    shares = allocate_pro_rata(D(250), {1: D(200), 2: D(200)}, lot=D(100))
    assert sum(shares.values()) == D(250)
    assert all(shares[k] <= D(200) for k in shares)


def test_bad_input_is_refused():
    import pytest

    with pytest.raises(ValueError):
        allocate_pro_rata(D(11), {1: D(10)})
    with pytest.raises(ValueError):
        allocate_pro_rata(D(-1), {1: D(10)})
    with pytest.raises(ValueError):
        allocate_pro_rata(D(1), {1: D(10)}, lot=D(0))


requests = st.dictionaries(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=50).map(lambda lots: D(lots * 100)),
    min_size=1,
    max_size=12,
)


@given(requests=requests, data=st.data())
def test_properties(requests, data):
    total = sum(requests.values())
    filled_lots = data.draw(st.integers(min_value=0, max_value=int(total / 100)))
    filled = D(filled_lots * 100)
    shares = allocate_pro_rata(filled, requests, lot=D(100))
    assert set(shares) == set(requests)
    assert sum(shares.values()) == filled, "the whole fill is booked"
    for key, share in shares.items():
        assert D(0) <= share <= requests[key], "never more than asked"
        assert share % 100 == 0, "whole lots"
        exact = filled * requests[key] / total
        assert abs(share - exact) < 100, "within one lot of the exact pro-rata share"
    assert allocate_pro_rata(filled, dict(reversed(list(requests.items()))), lot=D(100)) == shares
