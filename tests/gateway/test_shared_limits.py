"""Rate limits are one budget for every API process: two real processes taking from the same login limit in
Redis get, together, exactly the limit — not the limit each. With Redis gone, a process still limits by itself."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import REDIS_URL, drop_keys  # noqa: E402
from tests.support import free_port  # noqa: E402

pytestmark = pytest.mark.timeout(60)

TAKER = textwrap.dedent("""
    import sys
    from gateway.api.ratelimit import SharedLimit, shared_storage
    url, prefix, tries = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limit = SharedLimit(10, shared_storage(url, prefix), "login")
    sys.stdin.readline()  # both processes are ready: take at the same time
    waits = [limit.take("ip:203.0.113.7") for _ in range(tries)]
    print(sum(1 for w in waits if w == 0), min([w for w in waits if w > 0], default=0))
""")


def _takers(url: str, prefix: str, count: int, tries: int) -> list[tuple[int, float]]:
    procs = [subprocess.Popen([sys.executable, "-c", TAKER, url, prefix, str(tries)], cwd=REPO, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
             for _ in range(count)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=40)
        assert proc.returncode == 0
        allowed, wait = stdout.split()
        out.append((int(allowed), float(wait)))
    return out


def test_two_processes_share_one_login_budget_in_redis():
    prefix = f"gwtest-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        results = _takers(REDIS_URL, prefix, count=2, tries=8)
        assert sum(a for a, _ in results) == 10, results  # 16 tries, 10 a minute between them (per process: 16)
        assert all(a >= 2 for a, _ in results), results   # both really counted in the same budget
        refused = [w for a, w in results if a < 8]  # a process that was refused at least once
        assert refused and all(0 < w <= 60 for w in refused), results  # is told when to retry
        assert list(client.scan_iter(match="\\{" + prefix + "\\}:limits:*"))  # under the deployment's hash tag
    finally:
        drop_keys(client, prefix)
        client.close()


def test_without_redis_a_process_limits_by_itself():
    from gateway.api.ratelimit import SharedLimit, shared_storage

    limit = SharedLimit(3, shared_storage(f"redis://127.0.0.1:{free_port()}/0", "gwtest-down"), "login")
    waits = [limit.take("ip:198.51.100.1") for _ in range(5)]
    assert [w == 0 for w in waits] == [True, True, True, False, False] and waits[-1] > 0
