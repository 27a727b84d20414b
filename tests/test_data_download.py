"""Downloading Fashion-MNIST (``--download``) offline, without mocks.

A real HTTP server on 127.0.0.1 serves the Debian package's files, and torchvision's
``FashionMNIST.mirrors`` points at it: torchvision's own download, MD5 check and gunzip
run, into a cache chosen with ``$NNJOULES_CACHE``.

The Debian package recompressed upstream's archives, so its ``.gz`` files do not have the
MD5 sums torchvision pins (``FashionMNIST.resources``, upstream's published ones), but
what they hold is upstream's data: ``RAW_MD5`` are the MD5 sums of the four uncompressed
upstream IDX files, which a download must reproduce.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from torchvision.datasets import FashionMNIST

from nnjoules.cli import main
from nnjoules.data import fashion_mnist as fm
from nnjoules.data import fashion_mnist_splits, find_fashion_mnist
from nnjoules.errors import InputError

SOURCE = fm.DEBIAN_DIR  # what the mirror serves (the `cache` fixture hides fm.DEBIAN_DIR)
RAW_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

Requests = list[tuple[str, str, int]]  # what a test server answered: method, path, status

# The README's test command installs the Debian package that the mirror serves.
needs_debian = pytest.mark.usefixtures("fashion_mnist_installed")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


class _Handler(SimpleHTTPRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.requested.append((self.command, self.path, int(code)))  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requested: Requests

    def handle_error(self, request: object, client_address: object) -> None:
        # torchvision opens each URL once to follow redirects and closes it unread.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, Requests]]:
    """A base URL serving ``folder``, and the requests it answered (method, path, status)."""
    server = _Server(("127.0.0.1", 0),
                     functools.partial(_Handler, directory=str(folder)))
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server.requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty download cache, and no local copy to be found before it."""
    monkeypatch.setenv("NNJOULES_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNJOULES_DATA", raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian-package")
    return tmp_path / "cache"


@pytest.fixture
def debian_mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[Requests]:
    """torchvision's only mirror serves the Debian package's files; yields the requests."""
    with serve(SOURCE) as (url, requested):
        monkeypatch.setattr(FashionMNIST, "mirrors", [url])
        yield requested


@pytest.fixture
def empty_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """torchvision's only mirror answers 404 to everything; yields its URL.

    torchvision keeps each mirror's ``HTTPError`` in a reference cycle, so the error's
    open socket is only closed (with a ``ResourceWarning``) by the garbage collector:
    collected here, in the test that made it, whose mark ignores that warning."""
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as (url, requested):
        monkeypatch.setattr(FashionMNIST, "mirrors", [url])
        yield url
    assert requested == [("GET", "/train-images-idx3-ubyte.gz", 404)]
    gc.collect()


torchvision_leaks_a_socket_on_404 = pytest.mark.filterwarnings(
    "ignore:unclosed <socket.socket:ResourceWarning")


def pin_served_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision checks the served archives against their own MD5 sums (see the
    module docstring); their content is checked against ``RAW_MD5`` after unpacking."""
    monkeypatch.setattr(FashionMNIST, "resources",
                        [(name, md5(SOURCE / name)) for name, _ in FashionMNIST.resources])


@needs_debian
def test_download_fetches_checks_and_unpacks(cache: Path, debian_mirror: Requests,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pin_served_md5(monkeypatch)
    folder = find_fashion_mnist(download=True)
    assert folder == cache / "FashionMNIST" / "raw"
    # each archive twice: torchvision's redirect probe, then the download
    assert sorted(debian_mirror) == sorted(("GET", f"/{name}.gz", 200)
                                           for name in RAW_MD5 for _ in range(2))
    for name, digest in RAW_MD5.items():
        assert md5(folder / name) == digest, name
        assert md5(folder / f"{name}.gz") == md5(SOURCE / f"{name}.gz"), name
    # found in the cache from now on, without a download
    splits = fashion_mnist_splits(test_limit=100)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50_000, 10_000, 100)
    assert find_fashion_mnist() == folder


@needs_debian
def test_download_into_the_given_folder(cache: Path, debian_mirror: Requests, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--download --data-dir DIR``: DIR (created if missing) receives the files, in
    torchvision's layout, and is found there afterwards without a download."""
    pin_served_md5(monkeypatch)
    target = tmp_path / "mine" / "fmnist"
    folder = find_fashion_mnist(target, download=True)
    assert folder == target / "FashionMNIST" / "raw" and not cache.exists()
    for name, digest in RAW_MD5.items():
        assert md5(folder / name) == digest, name
    served = len(debian_mirror)
    assert find_fashion_mnist(target, download=True) == folder
    assert len(debian_mirror) == served  # nothing fetched the second time


@needs_debian
def test_checksum_mismatch_is_an_input_error(cache: Path, debian_mirror: Requests) -> None:
    # torchvision's own (upstream) MD5 sums against the Debian package's recompressed files
    name, upstream = FashionMNIST.resources[0]
    assert md5(SOURCE / name) != upstream, "the Debian archives now have upstream's MD5 sums"
    with pytest.raises(InputError, match=r"downloading Fashion-MNIST into .*cache failed "
                       r"\(Error downloading train-images-idx3-ubyte\.gz: .*"
                       r"File not found or corrupted\.\); install `dataset-fashion-mnist`"):
        find_fashion_mnist(download=True)


@torchvision_leaks_a_socket_on_404
def test_http_404_is_an_input_error(cache: Path, empty_mirror: str) -> None:
    with pytest.raises(InputError, match=rf"Tried {empty_mirror}, got: HTTP Error 404"):
        find_fashion_mnist(download=True)


def test_closed_port_is_an_input_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(FashionMNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    with pytest.raises(InputError, match="downloading Fashion-MNIST .*Connection refused"):
        find_fashion_mnist(download=True)


@torchvision_leaks_a_socket_on_404
def test_cli_download_failure_exits_2(cache: Path, empty_mirror: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lenet5.pt"
    assert main(["train", "lenet5", "--download", "--out", str(out), "--epochs", "1",
                 "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnjoules: error: downloading Fashion-MNIST into "), err
    assert "HTTP Error 404" in err and "Traceback" not in err
    assert err.count("\n") == 1, err  # one line
    assert not out.exists()


@needs_debian
def test_cli_trains_on_downloaded_data(cache: Path, debian_mirror: Requests, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    pin_served_md5(monkeypatch)
    out = tmp_path / "lenet5.pt"
    assert main(["train", "lenet5", "--download", "--out", str(out), "--epochs", "1",
                 "--train-limit", "64", "--val-limit", "64", "--test-limit", "64",
                 "--batch-size", "32", "--device", "cpu", "--quiet"]) == 0
    assert "validation accuracy" in capsys.readouterr().out and out.is_file()
    assert (cache / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
