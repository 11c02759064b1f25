"""The agents role: the agent pool of agent campaigns on the runtime (``orchestrator agents``)."""
