"""The file import (all or nothing, or the good rows) and the quotes API: 4xx in words,
nothing half-written."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from portfolios import quotes as selectors
from portfolios.models import FxRate, Price, QuarantinedQuote
from portfolios.services import quotes as services

pytestmark = pytest.mark.django_db


def client_of(user):
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def a_file(today):
    yesterday = today - timedelta(days=1)
    return (
        "symbol,as_of,price\n"
        f"AAA,{yesterday},99.50\n"
        f"BBB,{today},51.00\n"
        f"EUR/USD,{today},1.0850\n"
        f"ZZZ,{today},5\n"  # no such security
        f"CCC,{today},-2\n"  # negative: quarantined in good-rows mode
        f"DDD,9999-12-31,1\n"  # dated in the future
        f"EEE,{today},abc\n"  # not a number
    )


def test_all_or_nothing_names_every_bad_row_and_applies_nothing(book, quote_store, ops):
    today = timezone.now().date()
    prices = Price.objects.count()
    with pytest.raises(ValidationError) as refused:
        services.prices_import(actor=ops, text=a_file(today), mode="all_or_nothing")
    assert refused.value.message_dict["file"] == [
        "Row 5 (ZZZ): no security ZZZ",
        "Row 8 (EEE): last must be a number, not 'abc'",
    ]
    # the readable rows are checked too before anything is applied
    clean = "\n".join(x for x in a_file(today).split("\n") if "ZZZ" not in x).replace("abc", "10")
    with pytest.raises(ValidationError) as refused:
        services.prices_import(actor=ops, text=clean, mode="all_or_nothing")
    assert refused.value.message_dict["file"] == [
        "Row 5 (CCC): negative last -2",
        "Row 6 (DDD): dated 9999-12-31T23:59:59.999999+00:00, in the future (now "
        + refused.value.message_dict["file"][-1].split("(now ")[-1],
    ]
    assert Price.objects.count() == prices and not QuarantinedQuote.objects.exists()
    assert selectors.price_for(book["securities"]["BBB"]).source == "close"  # the book's
    assert not AuditEvent.objects.filter(kind="prices.imported").exists()


def test_good_rows_applies_the_good_names_the_bad_and_quarantines_the_unbelievable(
    book, quote_store, ops
):
    today = timezone.now().date()
    result = services.prices_import(
        actor=ops, text=a_file(today), mode="good_rows", filename="close.csv"
    )
    assert result.applied == 3
    assert [str(e) for e in result.errors] == [
        "Row 5 (ZZZ): no security ZZZ",
        "Row 8 (EEE): last must be a number, not 'abc'",
    ]
    assert sorted(q.symbol for q in result.quarantined) == ["CCC", "DDD"]
    assert Price.objects.get(
        security__ticker="AAA", as_of=today - timedelta(days=1)
    ).price == Decimal("99.5")
    assert Price.objects.get(security__ticker="BBB", as_of=today).price == Decimal("51")
    assert FxRate.objects.get(currency="EUR", quote="USD", as_of=today).rate == Decimal("1.085")
    assert not Price.objects.filter(as_of__gt=today).exists()
    event = AuditEvent.objects.get(kind="prices.imported")
    assert event.actor == ops and event.after["applied"] == 3 and event.after["file"] == "close.csv"


def test_the_import_is_for_operations_only(book, quote_store, pm):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.prices_import(actor=pm, text="symbol,price\nAAA,1\n", mode="good_rows")


# --- the API ----------------------------------------------------------------------------


def test_posting_quotes_applies_them_and_quarantines_the_unbelievable(book, quote_store, ops):
    client = client_of(ops)
    now = timezone.now().isoformat()
    answer = client.post(
        "/api/v1/quotes/",
        [
            {
                "symbol": "AAA",
                "venue": "XNAS",
                "bid": 100.1,
                "ask": 100.2,
                "last": 100.15,
                "at": now,
            },
            {"symbol": "EUR/USD", "last": 1.09},
        ],
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json() == {"applied": 2, "ignored": 0, "quarantined": []}
    assert selectors.price_for(book["securities"]["AAA"]).price == Decimal("100.15")
    answer = client.post(
        "/api/v1/quotes/", [{"symbol": "AAA", "last": 1, "at": "9999-12-31"}], format="json"
    )
    assert answer.status_code == 202
    (held,) = answer.json()["quarantined"]
    assert held["symbol"] == "AAA" and held["reason"].startswith("dated 9999-12-31")
    assert selectors.price_for(book["securities"]["AAA"]).price == Decimal("100.15")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"symbol": "AAA"}, "Send a list of quotes, at least one."),
        ([], "Send a list of quotes, at least one."),
        ([{"symbol": "NOPE", "last": 1}], "Row 0 (NOPE): no security NOPE"),
        ([{"last": 1}], "Row 0: no symbol"),
        ([{"symbol": "AAA", "last": "ten"}], "Row 0 (AAA): last must be a number, not 'ten'"),
        ([{"symbol": "AAA"}], "Row 0 (AAA): no price (give last, price, bid or ask)"),
        ([{"symbol": "AAA", "last": 1, "at": "noon"}], "Row 0 (AAA): time 'noon' is not a date"),
    ],
)
def test_a_bad_post_is_a_400_in_words_and_applies_nothing(book, quote_store, ops, body, message):
    answer = client_of(ops).post("/api/v1/quotes/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["quotes"][0].startswith(message)
    assert not QuarantinedQuote.objects.exists()
    assert selectors.price_for(book["securities"]["AAA"]).source == "close"


def test_a_pm_may_read_quotes_but_not_post_them(book, quote_store, pm):
    client = client_of(pm)
    assert (
        client.post("/api/v1/quotes/", [{"symbol": "AAA", "last": 1}], format="json").status_code
        == 403
    )
    services.quotes_apply(
        [services.Quote("AAA", "XNAS", timezone.now(), 99.9, 100.1, 100.0)], source="t"
    )
    answer = client.get("/api/v1/quotes/?symbols=AAA,CCC")
    assert answer.status_code == 200
    rows = {r["security"]: r for r in answer.json()["results"]}
    assert rows["AAA"]["freshness"] == "fresh" and rows["AAA"]["source"] == "live"
    assert rows["AAA"]["price"] == "100.00000000" and rows["AAA"]["bid"] == "99.90000000"
    assert rows["CCC"]["source"] == "close"


def test_the_import_endpoint_in_both_modes(book, quote_store, ops):
    client = client_of(ops)
    today = timezone.now().date()

    def upload(mode):
        return client.post(
            "/api/v1/quotes/import/",
            {"file": SimpleUploadedFile("p.csv", a_file(today).encode()), "mode": mode},
            format="multipart",
        )

    refused = upload("all_or_nothing")
    assert refused.status_code == 400 and "Row 5 (ZZZ): no security ZZZ" in refused.json()["file"]
    partial = upload("good_rows")
    assert partial.status_code == 202
    assert partial.json()["applied"] == 3 and len(partial.json()["bad_rows"]) == 2
    wrong = client.post(
        "/api/v1/quotes/import/",
        {"file": SimpleUploadedFile("p.csv", b"\xff\xfe"), "mode": "good_rows"},
        format="multipart",
    )
    assert wrong.status_code == 400 and wrong.json()["file"] == ["The file is not UTF-8 text."]


def test_polling_changes_gives_a_cursor_then_what_moved(book, quote_store, ops):
    client = client_of(ops)
    first = client.get("/api/v1/quotes/changes/").json()
    assert first["quotes"] == {}
    services.quotes_apply(
        [services.Quote("AAA", "XNAS", timezone.now(), 99.9, 100.1, 100.0)], source="t"
    )
    services.bars_flush()
    second = client.get("/api/v1/quotes/changes/", {"since": first["cursor"]}).json()
    assert second["quotes"]["AAA"][0] == 100.0
    assert client.get("/api/v1/quotes/changes/?since=yesterday").status_code == 400


def test_an_import_sent_twice_with_one_idempotency_key_is_applied_once(book, quote_store, ops):
    client = client_of(ops)
    today = timezone.now().date()

    def upload(text):
        return client.post(
            "/api/v1/quotes/import/",
            {"file": SimpleUploadedFile("p.csv", text.encode()), "mode": "good_rows"},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="import-1",
        )

    text = f"symbol,as_of,price\nAAA,{today},101\n"
    assert upload(text).status_code == 201
    assert upload(text).status_code == 201  # the first answer, replayed
    assert AuditEvent.objects.filter(kind="prices.imported").count() == 1
    other = upload(f"symbol,as_of,price\nAAA,{today},102\n")  # the same key, another file
    assert other.status_code == 422
