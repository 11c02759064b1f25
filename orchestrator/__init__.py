"""The call orchestrator's roles: config, Kafka plumbing, ingress, worker, dispatcher, campaigns.

Arrows point one way: ``orchestrator`` -> ``handlers`` -> ``contracts``. The test bench lives in
``orchestrator.sandbox`` and the local broker tooling in ``orchestrator.localbroker``; both use
the product and the product uses neither (docs/layout.md).
"""

__version__ = "0.1.0"
