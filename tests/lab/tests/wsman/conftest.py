# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the WS-Management layer tests: lab servers on loopback with dummy backends."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    import exchlab.wsman  # noqa: F401 pylint: disable=unused-import # only probes importability
except ImportError:
    # tests/lab holds the exchlab package; the lead puts it on sys.path, this covers the rest.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# wsman_support sits next to this file; importlib import mode would not add this folder.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsman_support import (  # noqa: E402
    HTTP_PORT,
    HTTPS_PORT,
    PASSWORD,
    USER,
    AddressPool,
    DummyBackend,
    ServerFactory,
)

from exchlab.wsman import LabCA, ListenerBindError, WsmanServer  # noqa: E402


@pytest.fixture(scope="session")
def address_pool() -> AddressPool:
    return AddressPool()


@pytest.fixture(scope="session")
def lab_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("wsman-lab")
    # pyspnego NTLM acceptor credentials, in the Heimdal DOMAIN:USER:PASSWORD form: one line
    # per user-name form a client sends.
    (state / "ntlm_users").write_text(f":{USER}:{PASSWORD}\nLAB:{USER}:{PASSWORD}\n")
    return state


@pytest.fixture(scope="session")
def lab_ca(lab_state: Path) -> LabCA:
    return LabCA.load_or_create(lab_state)


@pytest.fixture
def make_server(
    address_pool: AddressPool, lab_state: Path, lab_ca: LabCA
) -> Iterator[ServerFactory]:
    """Start a WsmanServer for n dummy hosts; everything stops when the test ends."""
    started: list[tuple[WsmanServer, list[DummyBackend]]] = []

    def factory(
        count: int = 1, configure: Callable[[DummyBackend], None] | None = None, **kwargs: object
    ) -> tuple[WsmanServer, list[DummyBackend]]:
        for _attempt in range(5):
            backends = [
                DummyBackend(f"KMS-{address.replace('.', '-')}", address)
                for address in address_pool.take(count)
            ]
            for backend in backends:
                if configure is not None:
                    configure(backend)
            server = WsmanServer(
                backends,  # type: ignore[arg-type]
                lab_ca,
                http_port=HTTP_PORT,
                https_port=HTTPS_PORT,
                ntlm_user_file=str(lab_state / "ntlm_users"),
                **kwargs,  # type: ignore[arg-type]
            )
            try:
                server.start()
            except ListenerBindError:
                continue  # someone else holds one of these addresses: take fresh ones
            started.append((server, backends))
            return server, backends
        raise RuntimeError("no free 127.77.x.y addresses after 5 attempts")

    yield factory
    for server, backends in started:
        for backend in backends:
            backend.released.set()
        server.stop()


@pytest.fixture
def host(make_server: ServerFactory) -> tuple[WsmanServer, DummyBackend]:
    server, backends = make_server()
    return server, backends[0]


@pytest.fixture
def backend(host: tuple[WsmanServer, DummyBackend]) -> DummyBackend:
    """The dummy host of `host`, for the tests that need nothing of its server."""
    return host[1]
