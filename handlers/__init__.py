"""Pure state machines and flow rendering: no I/O, no clock, no orchestrator imports."""
