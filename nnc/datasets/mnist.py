"""MNIST and Fashion-MNIST: downloaded once, checked, cached, parsed with NumPy.

``load_mnist()`` and ``load_fashion_mnist()`` return
``(X_train, y_train, X_test, y_test)``: X of shape (60000, 784) and
(10000, 784), float32 pixels scaled to [0, 1] (the 28x28 images flattened
row by row), y int64 labels 0..9.

The four gzip'd IDX files of a data set are downloaded the first time into
a cache folder and read from there afterwards (no network access):

* the folder: ``cache_dir=`` if given, else ``$NNC_DATA``, else the user
  cache folder (``$XDG_CACHE_HOME/nnc`` or ``~/.cache/nnc``; on Windows
  ``%LOCALAPPDATA%\\nnc``), with a sub-folder ``mnist`` or
  ``fashion-mnist``;
* the source: ``base_url=`` if given, else ``$NNC_MNIST_URL`` /
  ``$NNC_FASHION_MNIST_URL``, else the public mirrors in ``DATASETS``
  (tried in order);
* every file's SHA-256 is checked against the published value in
  ``DATASETS`` before it is kept: a download is written to a temporary file
  in the cache folder and renamed only once its checksum matched, so an
  interrupted or corrupted download never leaves a file behind. Cached
  files are checked again on every load.

Offline, the error names the URLs and the folder where the four files can
be put by hand. The format (IDX, http://yann.lecun.com/exdb/mnist/): a
big-endian header of a magic number ``0x0000TTNN`` (TT the element type,
0x08 = unsigned byte; NN the number of dimensions), then the dimensions as
big-endian uint32, then the data, row-major.
"""
import gzip
import hashlib
import http.client
import math
import os
import sys
import tempfile
import urllib.error
import urllib.request

import numpy as np
from tqdm.auto import tqdm

from nnc._validation import check_dtype

__all__ = ["load_mnist", "load_fashion_mnist", "read_idx", "DownloadError", "ChecksumError",
           "DATASETS", "default_cache_dir"]

FILES = {  # role: file name, the same for both data sets
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: Mirrors and the published SHA-256 of each gzip'd file.
DATASETS = {
    "mnist": {
        "env": "NNC_MNIST_URL",
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        "sha256": {
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    },
    "fashion-mnist": {
        "env": "NNC_FASHION_MNIST_URL",
        # the bucket's website endpoint is HTTP-only; the checksums make it safe
        "mirrors": ("https://fashion-mnist.s3.eu-central-1.amazonaws.com/",
                    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                    "data/fashion/"),
        "sha256": {
            "train-images-idx3-ubyte.gz":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    },
}

TIMEOUT = 30  # seconds without data before a download is given up
_CHUNK = 1 << 16

# IDX element types: code -> big-endian NumPy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DownloadError(OSError):
    """A file could not be downloaded (offline, HTTP error, interrupted)."""


class ChecksumError(ValueError):
    """A file's SHA-256 is not the published one."""


def default_cache_dir():
    """``$NNC_DATA``, else the user cache folder plus ``nnc``."""
    if os.environ.get("NNC_DATA"):
        return os.path.abspath(os.path.expanduser(os.environ["NNC_DATA"]))
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return os.path.join(os.environ["LOCALAPPDATA"], "nnc")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nnc")


# --- IDX ------------------------------------------------------------------------

def read_idx(source):
    """An IDX file (a path, gzip'd or not, or its bytes) as a NumPy array of
    its native type and shape. Raises ValueError for anything that is not a
    well-formed IDX file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "data"
    else:
        try:
            name = os.fspath(source)
        except TypeError:
            raise TypeError(f"source must be a file name or the file's bytes, got "
                            f"{source!r:.60}") from None
        with open(name, "rb") as f:
            data = f.read()
    if data[:2] == b"\x1f\x8b":  # gzip
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{name}: corrupt gzip data ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        magic = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
        raise ValueError(f"{name} is not an IDX file: magic number "
                         f"{'(missing)' if magic is None else f'0x{magic:08x}'}, expected "
                         "0x0000TTNN with TT an element type in "
                         f"{{{', '.join(f'0x{t:02x}' for t in _IDX_TYPES)}}}")
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: IDX header truncated ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(data) - header != expected:
        raise ValueError(f"{name}: IDX data of shape {shape} needs {expected} bytes after the "
                         f"header, the file has {len(data) - header}")
    try:
        array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    except ValueError as exc:  # e.g. more dimensions than NumPy supports
        raise ValueError(f"{name}: IDX data of {ndim} dimensions cannot be read ({exc})") from None
    return array.astype(dtype.newbyteorder("="))


# --- download and cache ---------------------------------------------------------

def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url, path, expected_sha256, progress):
    """Stream ``url`` into a temporary file beside ``path``, check its
    SHA-256 and only then rename it to ``path``."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                    length = response.headers.get("Content-Length")
                    length = int(length) if length and length.isdigit() else None
                    with tqdm(total=length, unit="B", unit_scale=True, unit_divisor=1024,
                              desc=name, disable=not progress, leave=False) as bar:
                        while True:
                            chunk = response.read(_CHUNK)
                            if not chunk:
                                break
                            out.write(chunk)
                            digest.update(chunk)
                            size += len(chunk)
                            bar.update(len(chunk))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(f"could not download {url}: {reason!s} "
                                    f"({type(exc).__name__})") from exc
        if length is not None and size != length:
            raise DownloadError(f"download of {url} was interrupted: {size} of {length} bytes")
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise ChecksumError(f"{url} has SHA-256 {actual}, expected {expected_sha256}: "
                                "the download is corrupt or the mirror serves other data; "
                                "nothing was kept")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fetch(dataset, cache_dir, base_url, progress):
    """Paths of the four verified files, downloading the missing ones."""
    spec = DATASETS[dataset]
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a folder name (str or os.PathLike), got {cache_dir!r}")
    if base_url is not None and not isinstance(base_url, str):
        raise TypeError(f"base_url must be a URL string, got {base_url!r}")
    root = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = os.path.join(os.path.abspath(os.path.expanduser(root)), dataset)
    base_url = base_url or os.environ.get(spec["env"])
    mirrors = (base_url,) if base_url else spec["mirrors"]
    mirrors = tuple(m if m.endswith("/") else m + "/" for m in mirrors)
    paths = {}
    for role, name in FILES.items():
        path = os.path.join(folder, name)
        expected = spec["sha256"][name]
        if os.path.exists(path):
            actual = _sha256(path)
            if actual != expected:
                raise ChecksumError(f"cached file {path} has SHA-256 {actual}, expected "
                                    f"{expected}: delete it and it will be downloaded again")
        else:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise DownloadError(f"cannot create the cache folder {folder}: {exc}; set "
                                    "NNC_DATA or cache_dir= to a writable folder") from None
            errors = []
            for mirror in mirrors:
                try:
                    _download(mirror + name, path, expected, progress)
                    break
                except DownloadError as exc:
                    errors.append(str(exc))
            else:
                urls = ", ".join(m + name for m in mirrors)
                raise DownloadError(
                    f"could not download {dataset} file {name} from {urls}:\n  "
                    + "\n  ".join(errors)
                    + "\nIf this machine is offline (or the download keeps failing), get "
                    f"the files {', '.join(FILES.values())} by hand (from "
                    f"{' or '.join(mirrors)}) and put them in {folder} (they are checked "
                    "against their SHA-256 sums); set NNC_DATA to use another cache folder.")
        paths[role] = path
    return paths


def _load(dataset, cache_dir, base_url, progress, dtype):
    dtype = check_dtype(dtype)
    paths = _fetch(dataset, cache_dir, base_url, progress)
    arrays = {role: read_idx(path) for role, path in paths.items()}
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{paths[split + '_images']}: expected uint8 images of shape "
                             f"(n, rows, cols), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"{paths[split + '_labels']}: expected {images.shape[0]} labels, "
                             f"got shape {labels.shape}")
        X = images.reshape(images.shape[0], -1).astype(dtype)
        X /= 255
        out += [X, labels.astype(np.int64)]
    return tuple(out)


def load_mnist(cache_dir=None, base_url=None, progress=True, dtype=np.float32):
    """The MNIST handwritten digits (LeCun, Cortes & Burges): 60000 training
    and 10000 test images of 28x28 pixels, labels 0..9.

    Returns ``(X_train, y_train, X_test, y_test)``: X (n, 784) of ``dtype``
    (float32 by default) in [0, 1], y (n,) int64. Downloaded once (about
    11 MB) into ``cache_dir`` (default ``$NNC_DATA`` or ``~/.cache/nnc``)
    from ``base_url`` (default ``$NNC_MNIST_URL`` or the public mirrors),
    every file checked against its published SHA-256; ``progress`` shows a
    download bar. See the module docstring.
    """
    return _load("mnist", cache_dir, base_url, progress, dtype)


def load_fashion_mnist(cache_dir=None, base_url=None, progress=True, dtype=np.float32):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf, Zalando): 60000 training and
    10000 test images of 28x28 pixels of clothing, labels 0..9 (T-shirt/top,
    trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot).

    Same return value, caching and checks as ``load_mnist`` (about 30 MB;
    ``$NNC_FASHION_MNIST_URL`` overrides the mirrors).
    """
    return _load("fashion-mnist", cache_dir, base_url, progress, dtype)
