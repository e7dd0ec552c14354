"""Reading metrics as Prometheus sees them (a scrape of /metrics) and, in multiprocess mode, as
each worker wrote them (its own files in PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support.patience import patience

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    """Every sample of /metrics, keyed by name and labels (a new connection each time)."""
    async with httpx.AsyncClient(timeout=patience()) as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    """Every sample of Prometheus' text format, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def per_process(metrics_dir: Path, kind: str, name: str, **labels: str) -> dict[int, float]:
    """One sample's value in each process's own file (`{kind}_{pid}.db`, e.g. kind `counter`
    or `gauge_livesum`), by pid; processes that never set it are left out."""
    values = {}
    for file in metrics_dir.glob(f"{kind}_*.db"):
        pid = int(file.stem.rsplit("_", 1)[1])
        for family in MultiProcessCollector.merge([str(file)]):
            for found in family.samples:
                if found.name == name and found.labels == labels:
                    values[pid] = found.value
    return values
