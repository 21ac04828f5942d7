import pytest

from tests.conftest import service_missing


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
    if request.param == "redis":
        keys = list(store.client.scan_iter(match=quotecache.KEY + "*", count=1000))
        if keys:
            store.client.delete(*keys)
    else:
        from django.core.cache import cache

        cache.clear()
    quotes.bars_discard()
    quotes.reference_forget()
    yield store
    quotes.bars_discard()
    if request.param == "redis":
        keys = list(store.client.scan_iter(match=quotecache.KEY + "*", count=1000))
        if keys:
            store.client.delete(*keys)
