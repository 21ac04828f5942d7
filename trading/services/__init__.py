"""Every write of the trading domain, one module per sub-domain:

- `orders`: draft, approve, release into blocks, cancel before a broker has it;
- `routes`: route (part of) a block to a broker, send it, ask to cancel it;
- `executions`: apply a broker's execution report to its route and block;
- `blocks`: how a block follows its routes and its orders follow the block;
- `allocations`: book a block's fills to its account orders;
- `trading_day`: which day orders may still go out to a broker.
"""
