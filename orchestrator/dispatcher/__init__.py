"""The outbound dispatcher: ``voice.commands`` in, Voice/Application API requests out, results back.

Modules, each with one job: ``limiter`` (the asyncio front of the product's sliding-window
limiter, ``handlers.sliding_window``, with its AIMD ceiling), ``retry`` (the pure retry table
and backoff), ``auth`` (application JWT and Basic credentials), ``client`` (command -> HTTP
request, one pooled client), ``ledger`` (the dial ledger that makes a person ringing twice
impossible), ``executor`` (one command, start to final result), ``service`` (the Kafka role:
consume, schedule per call, produce results, commit), ``cli`` (``orchestrator dispatcher``).

Budgets across replicas
-----------------------
Vonage enforces two budgets per account, each on a rolling second: **CPS** (new calls, 3/s by
default) and **RPS** (every other request, 15/s). Several dispatcher replicas must never exceed
either *in total*, and no coordination service is available beyond Kafka itself, so the budgets
are divided by partition ownership, which Kafka's group protocol already makes exclusive:

* **CPS is owned whole by one replica.** Call-creating commands are keyed ``acct:{account}`` on
  ``voice.commands`` (``contracts.envelopes.command_key``), so all of one account's creates live in
  one partition, and exactly one group member at a time consumes it. That member runs the
  account's CPS limiter at the full configured rate; no other replica ever creates a call for the
  account. The owner can therefore use all of the budget (no static split that wastes it) and the
  total can never exceed it. When the partition moves (rebalance, crash), the previous owner
  stops at the revoke, and the new owner starts its limiter *saturated*: it assumes the last
  second was fully used, so the hand-over cannot put two owners' requests in one window.
* **RPS is shared in proportion to partitions owned.** Control commands are keyed by flow key and
  spread over all partitions, so every replica sends some. A replica owning ``k`` of ``P``
  partitions of ``voice.commands`` limits itself to ``rps * k / P`` (rounded down per window), which
  sums to at most ``rps`` over the group. After a rebalance the share is recomputed; capacity
  gained is treated as already used for one window (its previous owner may just have used it).

The price of this scheme is that RPS share follows partition count rather than load: a replica
whose partitions carry few control commands leaves part of its share unused. With 12 partitions
that granularity is 1/12 of the budget. The alternative (a shared token service) would add a
network hop and a new failure mode to every request.
"""
