"""Campaign dialing: the controller role, its contact/DNC readers and the ``campaign`` CLI."""
