"""pytest fixtures for the CrabCache integration tests.

Servers are started per test module (cheap enough under ASan, and a crash is pinned to
the module that caused it) and always stopped in fixture teardown, failures included.
The function-scoped fixtures empty the keyspace before each test and, after it, check
that the server is still alive and its stderr holds no sanitizer report: a test that
killed the server fails showing the report.

CRABTEST_TARGET=redis makes the CrabCache fixtures start redis-server instead (to
self-check the tests that only use RESP); tests of CrabCache-only features skip then.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import crabtest  # noqa: E402
from crabtest import CrabServer, RedisServer, RespConn, start_with_retry  # noqa: E402


def _start_target(**kw):
    if crabtest.TARGET == "redis":
        return start_with_retry(lambda: RedisServer())
    return start_with_retry(lambda: CrabServer(**kw))


@pytest.fixture(scope="module")
def crab_server():
    """One CrabCache server for the whole module (redis-server if CRABTEST_TARGET=redis)."""
    srv = _start_target()
    yield srv
    srv.stop()


@pytest.fixture
def crab(crab_server):
    """The module's CrabCache server, emptied before the test and checked after it.
    A server that died in an earlier test (which failed showing why) is replaced."""
    if crab_server.reported or not crab_server.alive():
        crabtest.restart(crab_server)
    crab_server.check()
    with RespConn(crab_server.resp_port, server=crab_server) as c:
        assert c.call("FLUSHALL") == b"+OK\r\n"
    yield crab_server
    crab_server.check()


@pytest.fixture
def crab_only():
    """Skip when the tests run against redis-server (native-protocol and CLI features)."""
    if crabtest.TARGET == "redis":
        pytest.skip("CrabCache-only behaviour; CRABTEST_TARGET=redis")


@pytest.fixture(scope="module")
def redis_ref_server():
    """A reference redis-server (Debian's), no persistence, one database."""
    srv = start_with_retry(lambda: RedisServer())
    yield srv
    srv.stop()


@pytest.fixture
def redis_ref(redis_ref_server):
    """The module's reference redis-server, emptied before the test."""
    if redis_ref_server.reported or not redis_ref_server.alive():
        crabtest.restart(redis_ref_server)
    with RespConn(redis_ref_server.port, server=redis_ref_server) as c:
        assert c.call("FLUSHALL") == b"+OK\r\n"
    yield redis_ref_server


@pytest.fixture
def make_crab():
    """Factory: make_crab(extra_args=[...], env={...}) starts a CrabCache server for this
    test only; every server started is stopped (and checked) at teardown."""
    started = []

    def factory(**kw):
        srv = start_with_retry(lambda: CrabServer(**kw))
        started.append(srv)
        return srv

    yield factory
    errors = []
    for srv in started:
        try:
            srv.stop()
        except crabtest.ServerError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


def pytest_terminal_summary(terminalreporter):
    if crabtest.SUMMARY:
        terminalreporter.section("crabtest summary")
        for line in crabtest.SUMMARY:
            terminalreporter.write_line(line)


def pytest_configure(config):
    # slow: builds or packages something (a minute or more); CI runs them all, a
    # quick local pass can deselect them with -m "not slow".
    config.addinivalue_line("markers", "slow: builds or packages something (a minute or more)")
