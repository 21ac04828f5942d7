"""Compliance's writes: the rule book and restricted lists (`rules`), the pre-trade
check that trading asks through `trading.pretrade` (`pretrade`), and overrides
(`overrides`)."""
