"""The local Dask cluster listens on the loopback interface only (no port open to the network)."""
from __future__ import annotations

import ipaddress

import psutil
import pytest

from hardyt.hw.tools.sweep import dask_client, run_jobs


def _square(x):
    return x * x


@pytest.mark.parametrize("processes", [False, True])
def test_local_cluster_listens_on_loopback_only(processes):
    with dask_client(workers=1, processes=processes) as client:
        results, failures = run_jobs(client, {"a": (_square, (3,))}, progress=False)
        assert results == {"a": 9} and not failures
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = [c.laddr for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening, "the cluster opened no socket at all: the check would not see one"
    assert all(ipaddress.ip_address(a.ip).is_loopback for a in listening), listening
