"""nnc.datasets.load_mnist / load_fashion_mnist against a local HTTP server.

Small generated IDX files are served from 127.0.0.1 (a random port, a
thread, shut down at the end); their checksums replace the published ones
for the duration of a test. No other host is contacted."""
import gzip
import hashlib
import http.server
import os
import re
import socket
import threading

import numpy as np
import pytest

import nnc
from nnc.datasets import mnist

N_TRAIN, N_TEST = 7, 3


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def make_files(seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, size=N_TRAIN).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, size=N_TEST).astype(np.uint8),
    }
    arrays["train-images-idx3-ubyte.gz"][0, 0, :2] = (0, 255)  # both ends of the scale
    files = {name: gzip.compress(idx_bytes(a)) for name, a in arrays.items()}
    return arrays, files


class Server:
    """A threaded local HTTP server serving ``files`` under /data/."""

    def __init__(self):
        self.files = {}
        self.truncate = set()   # names whose body is cut off half way
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                body = outer.files.get(name)
                if not self.path.startswith("/data/") or body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in outer.truncate:  # the connection closes mid-body
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def served(server, monkeypatch):
    """The generated files on the server, with their checksums injected
    for both data sets."""
    arrays, files = make_files()
    server.files.update(files)
    for spec in mnist.DATASETS.values():
        for name, body in files.items():
            monkeypatch.setitem(spec["sha256"], name, hashlib.sha256(body).hexdigest())
    monkeypatch.delenv("NNC_MNIST_URL", raising=False)
    monkeypatch.delenv("NNC_FASHION_MNIST_URL", raising=False)
    return server, arrays


def cache_listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


@pytest.mark.parametrize("loader,folder", [(nnc.datasets.load_mnist, "mnist"),
                                           (nnc.datasets.load_fashion_mnist, "fashion-mnist")])
def test_download_parse_and_cache_hit(served, tmp_path, loader, folder, capsys):
    server, arrays = served
    X_train, y_train, X_test, y_test = loader(cache_dir=tmp_path, base_url=server.url)
    assert X_train.shape == (N_TRAIN, 784) and X_test.shape == (N_TEST, 784)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.flags.c_contiguous
    np.testing.assert_allclose(
        X_train, arrays["train-images-idx3-ubyte.gz"].reshape(N_TRAIN, 784) / 255, rtol=1e-7)
    assert X_train[0, 0] == 0.0 and X_train[0, 1] == 1.0
    assert 0.0 <= X_test.min() and X_test.max() <= 1.0
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert cache_listing(tmp_path / folder) == sorted(mnist.FILES.values())
    assert len(server.requests) == 4
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err  # the tqdm bar
    # second call: read from the cache, no request
    again = loader(cache_dir=tmp_path, base_url=server.url, progress=False)
    assert len(server.requests) == 4
    for a, b in zip((X_train, y_train, X_test, y_test), again):
        np.testing.assert_array_equal(a, b)
    # float64 on request
    assert loader(cache_dir=tmp_path, base_url=server.url, dtype="float64")[0].dtype == np.float64


def test_env_vars_choose_cache_and_mirror(served, tmp_path, monkeypatch):
    server, _ = served
    monkeypatch.setenv("NNC_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("NNC_MNIST_URL", server.url)
    assert mnist.default_cache_dir() == str(tmp_path / "cache")
    nnc.datasets.load_mnist(progress=False)
    assert cache_listing(tmp_path / "cache" / "mnist") == sorted(mnist.FILES.values())


def test_default_cache_dir_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("NNC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if os.name != "nt":
        assert mnist.default_cache_dir() == os.path.join(str(tmp_path), "nnc")
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert mnist.default_cache_dir() == os.path.join(str(tmp_path), "home", ".cache", "nnc")


def test_checksum_mismatch_keeps_nothing(served, tmp_path, monkeypatch):
    server, _ = served
    monkeypatch.setitem(mnist.DATASETS["mnist"]["sha256"], "train-labels-idx1-ubyte.gz", "0" * 64)
    with pytest.raises(mnist.ChecksumError, match="train-labels-idx1-ubyte.gz.*SHA-256") as info:
        nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url, progress=False)
    assert "0" * 64 in str(info.value)
    assert isinstance(info.value, ValueError)
    assert "train-labels-idx1-ubyte.gz" not in cache_listing(tmp_path / "mnist")
    assert not [f for f in cache_listing(tmp_path / "mnist") if f.endswith(".part")]


def test_corrupt_cached_file_is_reported(served, tmp_path):
    server, _ = served
    nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url, progress=False)
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"garbage")
    with pytest.raises(mnist.ChecksumError, match=re.escape(str(path)) + ".*delete it"):
        nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url, progress=False)


def test_interrupted_download_keeps_nothing(served, tmp_path):
    server, _ = served
    server.truncate.add("train-images-idx3-ubyte.gz")
    with pytest.raises(mnist.DownloadError, match="train-images-idx3-ubyte.gz") as info:
        nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url, progress=False)
    assert server.url + "train-images-idx3-ubyte.gz" in str(info.value)
    assert cache_listing(tmp_path / "mnist") == []  # the first file: nothing, no .part
    # once the server is healthy again, the download succeeds
    server.truncate.clear()
    X_train = nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url, progress=False)[0]
    assert X_train.shape == (N_TRAIN, 784)


def test_offline_error_names_url_and_cache_path(tmp_path, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    url = f"http://127.0.0.1:{port}/mnist/"
    with pytest.raises(mnist.DownloadError) as info:
        nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=url, progress=False)
    message = str(info.value)
    assert url + "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message
    assert "by hand" in message
    assert isinstance(info.value, OSError)
    assert cache_listing(tmp_path / "mnist") == []


def test_http_404_is_a_download_error(served, tmp_path):
    server, _ = served
    with pytest.raises(mnist.DownloadError, match="404"):
        nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url.replace("/data/", "/x/"),
                                progress=False)


def test_bad_idx_magic_is_a_value_error(served, tmp_path, monkeypatch):
    server, _ = served
    body = gzip.compress(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    server.files["t10k-labels-idx1-ubyte.gz"] = body
    monkeypatch.setitem(mnist.DATASETS["mnist"]["sha256"], "t10k-labels-idx1-ubyte.gz",
                        hashlib.sha256(body).hexdigest())
    with pytest.raises(ValueError, match="not an IDX file: magic number 0x12340801"):
        nnc.datasets.load_mnist(cache_dir=tmp_path, base_url=server.url, progress=False)


# --- the IDX reader on its own ------------------------------------------------

@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                        (np.int32, 0x0C), (np.float32, 0x0D),
                                        (np.float64, 0x0E)])
def test_read_idx_types_and_endianness(dtype, code, tmp_path):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array, code)
    for source in (data, gzip.compress(data)):
        out = mnist.read_idx(source)
        assert out.shape == (2, 3, 4) and out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, array)
    path = tmp_path / "x.idx"
    path.write_bytes(data)
    np.testing.assert_array_equal(mnist.read_idx(path), array)


@pytest.mark.parametrize("data,match", [
    pytest.param(b"", "magic number \\(missing\\)", id="empty"),
    pytest.param(b"\x00\x00\x07\x01" + bytes(8), "magic number 0x00000701", id="unknown-type"),
    pytest.param(b"\x00\x00\x08\x02\x00\x00", "header truncated", id="short-header"),
    pytest.param(idx_bytes(np.zeros((2, 3), np.uint8))[:-1], "needs 6 bytes.*has 5", id="short"),
    pytest.param(idx_bytes(np.zeros((2, 3), np.uint8)) + b"x", "needs 6 bytes.*has 7", id="long"),
    pytest.param(b"\x1f\x8b\x08\x00garbage", "corrupt gzip", id="bad-gzip"),
])
def test_read_idx_rejects_malformed_data(data, match):
    with pytest.raises(ValueError, match=match):
        mnist.read_idx(data)


def test_published_checksums_look_right():
    for spec in mnist.DATASETS.values():
        assert sorted(spec["sha256"]) == sorted(mnist.FILES.values())
        for digest in spec["sha256"].values():
            assert re.fullmatch("[0-9a-f]{64}", digest)
    assert mnist.DATASETS["mnist"]["sha256"]["train-images-idx3-ubyte.gz"] == (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609")
