"""Kafka plumbing shared by every role: local broker, topic admin, clients, serialisation."""
