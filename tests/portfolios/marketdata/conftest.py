import pytest

from tests.conftest import empty_quote_store, service_missing


@pytest.fixture(params=["redis", "django-cache"])
def quote_store(request, settings):
    """The latest quotes kept in Redis (REDIS_URL) and in Django's cache, each test
    with an empty store and no bars left over."""
    from portfolios import quotecache
    from portfolios.services import quotes

    if request.param == "redis":
        if not settings.REDIS_URL:
            service_missing("REDIS_URL is not set")
        settings.OMS_QUOTE_REDIS_URL = settings.REDIS_URL
    else:
        settings.OMS_QUOTE_REDIS_URL = ""
    store = quotecache.store()
    empty_quote_store(store)
    quotes.bars_discard()
    quotes.reference_forget()
    yield store
    quotes.bars_discard()
    empty_quote_store(store)
