"""Runtime of the call orchestrator: config, Kafka plumbing, ingress, worker, dispatcher, campaigns.

Arrows point one way: ``orchestrator`` -> ``handlers`` -> ``contracts``.
"""

__version__ = "0.1.0"
