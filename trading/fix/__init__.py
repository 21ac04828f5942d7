"""The project's FIX engine: codec, data dictionaries, session layer, asyncio
transport, typed application messages, and a simulated broker.

No Django in here: the package imports and runs without Django settings.
See docs/fix.md.
"""
