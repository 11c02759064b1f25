"""Loading the declarative flows from a directory (the only I/O around flows).

Every ``*.yaml``/``*.yml`` file is one flow. Loading checks each flow fully (model, then a sample
render of every step), so a broken flow stops start-up with one line naming file, step and field
instead of failing a live call.
"""

from __future__ import annotations

from pathlib import Path

from contracts.flow import FlowError, FlowSet, parse_flow
from handlers.flow import check_flow


def load_flows(directory: str | Path | None) -> FlowSet:
    if directory is None:
        return FlowSet()
    root = Path(directory)
    if not root.is_dir():
        raise FlowError(f"--flows: {root} is not a directory")
    flows = []
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        flow = parse_flow(path.read_text(encoding="utf-8"), source=str(path))
        try:
            check_flow(flow)
        except FlowError as err:
            raise FlowError(f"{path}: {err}") from None
        flows.append(flow)
    return FlowSet(flows)
