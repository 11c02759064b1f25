"""The soak's picture: throughput, the broker's memory and every role's memory over time.

One PNG per run (``build/soak/<run>/soak.png``), so a reader sees at a glance whether the rate
held and whether anything grew; kills are marked on the time axis.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from orchestrator.sandbox.soak.sampler import Sample

__all__ = ["plot_run"]


def _binned_rate(times: Sequence[float], t0: float, bins: int) -> tuple[list[float], list[float]]:
    if not times:
        return [], []
    end = max(times)
    width = max((end - t0) / bins, 1.0)
    counts = [0] * bins
    for t in times:
        counts[min(int((t - t0) / width), bins - 1)] += 1
    return [((i + 0.5) * width) / 60 for i in range(bins)], [c / width for c in counts]


def plot_run(
    path: Path,
    *,
    samples: Sequence[Sample],
    dial_times: Sequence[float],
    kill_times: Sequence[float],
    title: str,
    pause_times: Sequence[float] = (),
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min([s.at for s in samples] + list(dial_times)) if samples or dial_times else 0.0
    fig, (ax_rate, ax_broker, ax_roles) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    fig.suptitle(title, fontsize=10)

    xs, rates = _binned_rate(dial_times, t0, 60)
    ax_rate.plot(xs, rates, label="calls placed/s (simulator ledger)", color="tab:blue")
    done_x = [(s.at - t0) / 60 for s in samples[1:]]
    done_rate = [(b.done - a.done) / max(b.at - a.at, 1e-9) for a, b in itertools.pairwise(samples)]
    ax_rate.plot(done_x, done_rate, label="contacts finished/s", color="tab:green", alpha=0.6)
    ax_rate.set_ylabel("per second")
    ax_rate.legend(loc="upper right", fontsize=8)

    broker = [(s.at - t0) / 60 for s in samples if "broker" in s.rss]
    ax_broker.plot(broker, [s.rss["broker"] for s in samples if "broker" in s.rss], color="black")
    ax_broker.set_ylabel("broker RSS (MiB)")

    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        for name, mb in s.rss.items():
            if name != "broker":
                series[name].append(((s.at - t0) / 60, mb))
    for name, points in sorted(series.items()):
        ax_roles.plot([p[0] for p in points], [p[1] for p in points], label=name, linewidth=1)
    ax_roles.set_ylabel("role RSS (MiB)")
    ax_roles.set_xlabel("minutes since start")
    ax_roles.legend(loc="upper left", fontsize=7, ncol=4)

    for ax in (ax_rate, ax_broker, ax_roles):
        for k in kill_times:
            ax.axvline((k - t0) / 60, color="red", alpha=0.15, linewidth=0.8)
        for p in pause_times:
            ax.axvline((p - t0) / 60, color="purple", alpha=0.25, linewidth=0.8, linestyle=":")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
