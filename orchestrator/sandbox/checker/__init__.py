"""History checker: reads everything afterwards and reports anomalies in Jepsen's terms."""
