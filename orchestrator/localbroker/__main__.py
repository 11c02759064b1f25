"""``python -m orchestrator.localbroker``: provision the local broker and say what will run."""

from orchestrator.config import ConfigError
from orchestrator.localbroker import LocalBroker

try:
    print(f"local broker: {LocalBroker().describe()}", flush=True)
except ConfigError as err:
    raise SystemExit(f"local broker: {err}") from None
