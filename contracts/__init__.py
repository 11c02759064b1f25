"""Typed contracts: every shape exchanged with Vonage and over Kafka.

This package is the bottom of the dependency arrow (orchestrator -> handlers -> contracts) and
imports nothing from the other two.
"""
