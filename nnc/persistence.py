"""Saving and loading models and training checkpoints.

A file is one ``.npz`` archive (a zip of ``.npy`` arrays, readable with
``np.load(path, allow_pickle=False)``) plus a JSON header, ``header.json``,
in the same archive (``unzip -p model.npz header.json`` shows it)::

    header.json                  format, format_version, nnc_version, kind,
                                 dtype, backend, seed, layers (class + config),
                                 model_rng, arrays (name -> shape, dtype),
                                 metadata; checkpoints add optimizer, trainer
    params/<i>.<name>.npy        layer i's parameter (e.g. params/0.W)
    buffers/<i>.<name>.npy       layer i's buffer (e.g. buffers/1.running_mean)
    optimizer/<name>.npy         optimizer state (checkpoints: m, v, velocity ...)
    history/steps/<name>.npy     the History (checkpoints)
    history/epochs/<name>.npy

``save_model`` / ``load_model`` (``model.save(path)`` / ``nnc.load(path)``)
round-trip a model bit-identically: parameters, batch-norm running
statistics and the model's random generator (dropout masks). A checkpoint
(``trainer.save_checkpoint(path)``) adds the optimizer state and the
trainer state (step count, shuffling generator, history), so
``trainer.fit(..., resume_from=path)`` continues exactly where it stopped.
``nnc.load`` reads a checkpoint's model too.

Writing is atomic: the archive goes to a temporary file in the same folder,
which replaces ``path`` (``os.replace``) only once it is complete, so a crash
mid-write leaves the previous file intact.

Loading trusts nothing in the file: no pickle, no eval. Only the layer
classes in ``LAYER_CLASSES`` can be built, from JSON constructor arguments
that the layers validate; every array is checked against the header and the
architecture, and parameters, buffers and optimizer state must be finite
(variances and squared-gradient averages >= 0; the History may hold NaN, a
diverged loss). A truncated, corrupted, wrong-version or hand-edited file
raises ``ValueError`` saying what is wrong.
"""
import errno
import json
import math
import os
import re
import secrets
import warnings
import zipfile

import numpy as np

from nnc._validation import (MAX_SEED, all_finite, as_finite, check_file_path,
                             check_generator_state, check_step)
from nnc._version import __version__
from nnc.backends import get_backend
from nnc.history import History
from nnc.init import INITIALIZERS
from nnc.layers import (NON_NEGATIVE_BUFFERS, BatchNorm, Dense, Dropout, LeakyReLU, ReLU,
                        Sigmoid, Tanh)
from nnc.model import Sequential
from nnc.schedules import Schedule

FORMAT = "nnc"
FORMAT_VERSION = 1
HEADER = "header.json"
#: the only classes a file can make nnc construct
LAYER_CLASSES = {cls.__name__: cls for cls in (Dense, BatchNorm, Dropout, ReLU, LeakyReLU,
                                               Sigmoid, Tanh)}
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # an archive with no members is only its end record
_NPY_HEADER_ROOM = 1 << 16  # bytes a .npy member may hold beyond its data
#: an archive whose members would inflate beyond this many times its size,
#: and beyond the allowance, is refused unread (see _open_archive)
_MAX_INFLATION = 100
_INFLATION_ALLOWANCE = 1 << 28
_MAX_HEADER_BYTES = 1 << 26  # the JSON header: architecture, metadata, a history's extras
_MAX_LAYERS = 100_000  # a header's layers (building 100 000 takes about a second)


# --- what goes into a file ---------------------------------------------------
def _architecture(model):
    return [{"class": type(layer).__name__, "config": layer.config()} for layer in model.layers]


def _model_entries(model):
    """(array name in the file, layer index, the model's array) for every
    parameter and buffer."""
    entries = []
    for i, layer in enumerate(model.layers):
        if LAYER_CLASSES.get(type(layer).__name__) is not type(layer):
            raise TypeError(f"layer {i} ({layer!r}) is not one of the layer classes nnc can "
                            f"save: {sorted(LAYER_CLASSES)}")
        entries += [(f"params/{i}.{name}", i, array) for name, array in layer.params.items()]
        entries += [(f"buffers/{i}.{name}", i, array) for name, array in layer.buffers.items()]
    return entries


def _model_arrays(model):
    return {name: array for name, _, array in _model_entries(model)}


def _model_header(model, kind, metadata):
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict (JSON-serialisable) or None, got {metadata!r}")
    if metadata and not all(isinstance(key, str) for key in metadata):
        # JSON keys are strings: 1 and "1" would become one key
        raise TypeError(f"metadata keys must be strings, got the keys {list(metadata)!r}")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "nnc_version": __version__,
        "kind": kind, "dtype": model.dtype.name, "backend": model.backend.name,
        "seed": model.seed, "layers": _architecture(model),
        "model_rng": model.rng.bit_generator.state, "metadata": metadata or {},
    }


HISTORY_GROUPS = ("steps", "epochs", "diagnostics")


def _json_value(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _history_json(where, value):
    """``value`` as plain JSON (NumPy scalars converted), or ValueError naming
    ``where`` in the history."""
    try:
        return json.loads(json.dumps(value, default=_json_value, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the history's {where} holds values a checkpoint cannot store: {exc} "
                         "(NaN and Inf can be stored in lists of numbers only)") from None


def _history_parts(history):
    """The History as arrays (lists of numbers, the usual case) plus a JSON
    part for anything else (``meta``, lists of non-numbers)."""
    arrays, extra = {}, {"meta": _history_json("meta", history.meta)}
    for group in HISTORY_GROUPS:
        for name, values in (getattr(history, group, None) or {}).items():
            try:
                array = np.asarray(values, dtype=None if len(values) else np.float64)
            except ValueError:  # ragged lists
                array = np.asarray(None)
            if array.dtype.kind in "biuf" and array.ndim >= 1:
                arrays[f"history/{group}/{name}"] = np.ascontiguousarray(
                    array, dtype=np.float64 if array.dtype.kind == "f" else np.int64)
            else:
                extra.setdefault(group, {})[name] = _history_json(f"{group}[{name!r}]",
                                                                  list(values))
    return arrays, extra


def save_model(model, path, metadata=None):
    """Write ``model`` (architecture, parameters, buffers, generator state)
    to ``path`` atomically. ``metadata``: a JSON-serialisable dict kept in
    the header (``read_header(path)["metadata"]``)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be an nnc.Sequential, got {type(model).__name__}")
    model._check_views()
    with model._in_use():  # not half-way through another thread's step
        arrays = {name: array.copy() for name, array in _model_arrays(model).items()}
    _check_savable(arrays)
    _write(path, _model_header(model, "model", metadata), arrays)


def save_checkpoint(trainer, path, metadata=None):
    """Write the trainer's model, optimizer state and trainer state (step
    count, shuffling generator, history) to ``path`` atomically."""
    model, optimizer = trainer.model, trainer.optimizer
    model._check_views()
    arrays = _model_arrays(model)
    header = _model_header(model, "checkpoint", metadata)
    state = optimizer.state_dict()
    header["optimizer"] = {"type": state["type"], "config": state["config"], "t": state["t"],
                           "state": sorted(state["state"])}
    for name, array in state["state"].items():
        arrays[f"optimizer/{name}"] = array
    _check_savable(arrays, optimizer.squared_state)
    header["trainer"] = {
        "step_count": trainer.step_count,
        "rng": trainer.rng.bit_generator.state,
        "config": _trainer_config(trainer),
    }
    # as load_state_dict will ask it (readable, per-layer norms filled in)
    history = trainer._readable_history()
    history_arrays, header["trainer"]["history"] = _history_parts(history)
    arrays.update(history_arrays)
    _write(path, header, arrays)


def _check_savable(arrays, squared_state=()):
    """Refuse to write what ``load`` would refuse to read: a model (or
    optimizer state) holding NaN or Inf, i.e. one that has diverged, or a
    negative running variance or average of squared gradients."""
    for name, array in arrays.items():
        if not all_finite(array):
            raise ValueError(f"array {name!r} contains NaN or Inf: the model has diverged and "
                             "nnc.load would refuse the file (train with the NaN guard on, "
                             "Trainer(nan_guard=True), to stop before this happens)")
        if _never_negative(name, squared_state) and array.size and array.min() < 0:
            raise ValueError(f"array {name!r} holds {_never_negative(name, squared_state)}, "
                             f"which is never negative, but its smallest value is "
                             f"{array.min()}: nnc.load would refuse the file")


def _never_negative(name, squared_state):
    """What the file's array ``name`` holds, if that is never negative."""
    if name.startswith("buffers/"):
        return NON_NEGATIVE_BUFFERS.get(name.rsplit(".", 1)[-1])
    if name.startswith("optimizer/") and name.split("/", 1)[1] in squared_state:
        return "an average or sum of squared gradients"
    return None


def _trainer_config(trainer):
    """Settings that must match for a bit-identical continuation."""
    schedule = trainer.schedule
    if schedule is not None and not isinstance(schedule, Schedule):
        # a custom callable: its name (a repr would hold a memory address)
        schedule = getattr(schedule, "__qualname__", type(schedule).__name__)
    return {"loss": type(trainer.loss).__name__, "batch_size": trainer.batch_size,
            "clip_norm": trainer.clip_norm, "clip_value": trainer.clip_value,
            "l2": trainer.l2,
            # (without memory addresses: a function inside a schedule's repr has one)
            "schedule": None if schedule is None else re.sub(r" at 0x[0-9a-fA-F]+", "",
                                                             repr(schedule))}


# --- atomic writing ------------------------------------------------------------
def _write_array(archive, name, array):
    """One ``.npy`` member (what ``np.savez`` writes), never pickled."""
    with archive.open(name + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def _write(path, header, arrays):
    path = os.path.realpath(check_file_path(path))  # a link keeps pointing at the new file
    header = dict(header, arrays={name: {"shape": list(np.shape(a)), "dtype": np.dtype(
        np.asarray(a).dtype).name} for name, a in arrays.items()})
    try:
        header_bytes = json.dumps(header, indent=1, allow_nan=False,
                                  default=_json_value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # (nested too deeply)
        raise TypeError(f"the header (metadata) must be JSON-serialisable: {exc}") from None
    if len(header.get("layers", ())) > _MAX_LAYERS:  # load would refuse it
        raise ValueError(f"the model has {len(header['layers'])} layers, more than the "
                         f"{_MAX_LAYERS} nnc.load builds")
    if len(header_bytes) > _MAX_HEADER_BYTES:  # load would refuse it
        raise ValueError(f"the header would take {len(header_bytes)} bytes, more than the "
                         f"{_MAX_HEADER_BYTES} nnc.load reads: keep large metadata in a file "
                         "of its own")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: its folder {folder!r} does not exist")
    # a short name: the file's own may already be as long as the system allows
    tmp = os.path.join(folder, f".nnc-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        file = open(tmp, "xb")
    except OSError as exc:  # name the user's path, not the temporary file
        raise type(exc)(exc.errno, f"cannot save to {path!r}: {exc.strerror}") from None
    try:
        with file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(HEADER, header_bytes)
                for name, array in arrays.items():
                    _write_array(archive, name, array)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# --- reading -------------------------------------------------------------------
def _bad(path, message):
    return ValueError(f"{path}: {message}")


def _open_archive(path):
    """The zip archive, after checking its magic number and every CRC."""
    path = check_file_path(path)
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except FileNotFoundError:
        folder = os.path.abspath(os.path.dirname(path) or ".")
        where = (f"in {folder!r}" if os.path.isdir(folder) else
                 f"the folder {folder!r} does not exist")
        # (the error adds ": 'path'" to this message itself)
        raise FileNotFoundError(errno.ENOENT, f"no nnc file ({where}; nnc files are written by "
                                "model.save or trainer.save_checkpoint)", path) from None
    if not magic:
        raise _bad(path, "the file is empty")
    if magic == _EMPTY_ZIP_MAGIC:
        raise _bad(path, "an empty zip archive, not an nnc file (nnc files are written by "
                         "model.save or trainer.save_checkpoint)")
    if magic != _ZIP_MAGIC:
        raise _bad(path, "not an nnc file (it is not a zip/.npz archive; nnc files are "
                         "written by model.save or trainer.save_checkpoint)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _bad(path, f"the archive is truncated or corrupted ({exc})") from None
    # before anything is inflated (a "zip bomb"): nnc stores its arrays
    # uncompressed; another tool's deflate may shrink zero arrays a thousandfold
    inflated = sum(info.file_size for info in archive.infolist())
    stored = os.path.getsize(path)
    if inflated > max(_MAX_INFLATION * stored, _INFLATION_ALLOWANCE):
        archive.close()
        raise _bad(path, f"the archive's members would inflate to {inflated} bytes from a "
                         f"file of {stored}: not a file nnc wrote (nnc stores its arrays "
                         "uncompressed)")
    try:
        broken = archive.testzip()  # reads every member, checks its CRC-32
    except Exception as exc:  # zlib.error, EOFError, BadZipFile, OSError ...
        archive.close()
        raise _bad(path, f"the archive is truncated or corrupted ({exc})") from None
    if broken is not None:
        archive.close()
        raise _bad(path, f"member {broken!r} is corrupted (CRC-32 mismatch)")
    return archive


def _parse_header(path, archive):
    if HEADER not in archive.namelist():
        raise _bad(path, f"no {HEADER} in the archive: not a file written by nnc "
                         "(model.save / trainer.save_checkpoint)")
    if archive.getinfo(HEADER).file_size > _MAX_HEADER_BYTES:  # checked before inflating it
        raise _bad(path, f"{HEADER} inflates to {archive.getinfo(HEADER).file_size} bytes, more "
                         f"than any nnc header ({_MAX_HEADER_BYTES}): not a file written by nnc")
    try:
        header = json.loads(archive.read(HEADER).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # (also ints beyond 4300 digits)
        raise _bad(path, f"{HEADER} is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, f"{HEADER} must hold a JSON object, got {type(header).__name__}")
    if header.get("format") != FORMAT:
        raise _bad(path, f"header format is {header.get('format')!r}, expected {FORMAT!r}: "
                         "not an nnc file")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _bad(path, f"header format_version must be an int, got {version!r}")
    if version != FORMAT_VERSION:
        newer = version > FORMAT_VERSION
        raise _bad(path, f"format version {version} (written by nnc "
                         f"{header.get('nnc_version', '?')}); this nnc {__version__} reads "
                         f"format version {FORMAT_VERSION}"
                         + ("; upgrade nnc to read it" if newer else ""))
    for key, kind in (("layers", list), ("arrays", dict), ("dtype", str), ("backend", str)):
        if not isinstance(header.get(key), kind):
            raise _bad(path, f"header field {key!r} must be a {kind.__name__}, "
                             f"got {header.get(key)!r}")
    if not isinstance(header.get("metadata", {}), dict):
        raise _bad(path, f"header field 'metadata' must be a JSON object, "
                         f"got {header['metadata']!r:.60}")
    return header


def read_header(path):
    """The JSON header of a file written by nnc, after checking the archive."""
    with _open_archive(path) as archive:
        return _parse_header(path, archive)


class _File:
    """A checked file: header plus arrays (read lazily, pickle refused)."""

    def __init__(self, path):
        self.path = check_file_path(path)
        with _open_archive(self.path) as archive:
            self.header = _parse_header(self.path, archive)
            sizes = {info.filename: info.file_size for info in archive.infolist()}
        self._check_contents(sizes)
        self.member_sizes = sizes

    def _check_contents(self, sizes):
        toc = self.header["arrays"]
        members = {name[:-4] for name in sizes if name.endswith(".npy")}
        others = sorted(set(sizes) - {HEADER} - {m + ".npy" for m in members})
        if others:
            raise _bad(self.path, f"unexpected members {others} in the archive")
        missing = sorted(set(toc) - members)
        if missing:
            raise _bad(self.path, f"array {missing[0]!r} listed in the header is missing "
                                  f"from the archive" + (f" (and {len(missing) - 1} more)"
                                                         if len(missing) > 1 else ""))
        extra = sorted(members - set(toc))
        if extra:
            raise _bad(self.path, f"array {extra[0]!r} in the archive is not listed in the header")
        for name, entry in toc.items():
            try:
                shape = tuple(int(d) for d in entry["shape"])
                dtype = np.dtype(entry["dtype"])
                if any(d < 0 for d in shape) or dtype.kind not in "iuf":
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                raise _bad(self.path, f"header entry for array {name!r} must be {{'shape': "
                                      f"[...], 'dtype': numeric}}, got {entry!r}") from None
            data_bytes = math.prod(shape) * dtype.itemsize
            if sizes[name + ".npy"] > data_bytes + _NPY_HEADER_ROOM:
                raise _bad(self.path, f"array {name!r} is larger than the header's "
                                      f"shape {list(shape)} allows")
            if sizes[name + ".npy"] < data_bytes:
                raise _bad(self.path, f"array {name!r} holds fewer bytes than the header's "
                                      f"shape {list(shape)} needs: the file is truncated or "
                                      "was edited")

    def arrays(self, prefix=""):
        """{name: array} of the arrays whose names start with ``prefix``,
        each checked against the header's shape and dtype."""
        names = [name for name in self.header["arrays"] if name.startswith(prefix)]
        raw, forged = {}, None
        try:
            with zipfile.ZipFile(self.path) as archive:
                for name in names:
                    with archive.open(name + ".npy") as member:
                        forged = self._npy_header_mismatch(name, member)
                    if forged:
                        break
                    with archive.open(name + ".npy") as member:
                        raw[name] = np.lib.format.read_array(member, allow_pickle=False)
        except ValueError as exc:  # e.g. "Object arrays cannot be loaded ..."
            raise _bad(self.path, f"cannot read array {name!r}: {exc}" + (
                " (nnc files never hold pickled Python objects)" if "bject" in str(exc)
                else "")) from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise _bad(self.path, f"the archive is truncated or corrupted ({exc})") from None
        if forged:
            raise _bad(self.path, forged)
        return {name: self._check_array(name, self.header["arrays"][name], raw[name])
                for name in names}

    def _npy_header_mismatch(self, name, member):
        """What is wrong with the member's own .npy header, or None: it must
        describe what the file's header lists (checked before reading: a
        forged shape would be allocated)."""
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            return f"member {name!r} has .npy format version {version}, which nnc does not write"
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(member)
        if dtype.hasobject:
            return (f"array {name!r} holds Python objects (dtype {dtype}): nnc files never "
                    "hold pickled Python objects, and nnc does not unpickle them")
        entry = self.header["arrays"][name]
        if list(shape) != list(entry["shape"]) or dtype != np.dtype(entry["dtype"]):
            return (f"array {name!r} has shape {list(shape)} and dtype {dtype}, but the "
                    f"header lists shape {list(entry['shape'])} and dtype {entry['dtype']}")
        return None

    def _check_array(self, name, entry, array):
        if not isinstance(array, np.ndarray):
            raise _bad(self.path, f"member {name!r} is not a .npy array")
        if list(array.shape) != list(entry["shape"]) or array.dtype != np.dtype(entry["dtype"]):
            raise _bad(self.path, f"array {name!r} has shape {list(array.shape)} and dtype "
                                  f"{array.dtype}, but the header lists shape "
                                  f"{list(entry['shape'])} and dtype {entry['dtype']}")
        return array


def _build_layer(path, i, entry):
    if not isinstance(entry, dict) or not isinstance(entry.get("class"), str) \
            or not isinstance(entry.get("config", {}), dict):
        raise _bad(path, f"layer {i} must be {{'class': name, 'config': {{...}}}}, got {entry!r}")
    name, config = entry["class"], dict(entry.get("config", {}))
    cls = LAYER_CLASSES.get(name)
    if cls is None:
        raise _bad(path, f"layer {i} has unknown class {name!r}; nnc can load "
                         f"{sorted(LAYER_CLASSES)}")
    init_name = None
    if cls is Dense and config.get("init") is not None:
        init_name = config["init"]
        if not isinstance(init_name, str):
            raise _bad(path, f"layer {i} (Dense): init must be a name, got {init_name!r}")
        if init_name not in INITIALIZERS:  # a custom callable's name: the weights are loaded
            config["init"] = None
    try:
        layer = cls(**config)
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"layer {i} ({name}) has a bad config {entry.get('config')!r}: "
                         f"{exc}") from None
    if init_name is not None:
        layer._init_name = init_name  # keep the name for repr/config
    return layer


def _build_model(file, backend):
    header, path = file.header, file.path
    if header["dtype"] not in ("float32", "float64"):
        raise _bad(path, f"header dtype must be 'float32' or 'float64', got {header['dtype']!r}")
    seed = header.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise _bad(path, f"header seed must be a non-negative int or null, got {seed!r}")
    if not header["layers"]:
        raise _bad(path, "header lists no layers")
    if len(header["layers"]) > _MAX_LAYERS:  # each is built before the parameters are read
        raise _bad(path, f"header lists {len(header['layers'])} layers, more than any nnc "
                         f"model ({_MAX_LAYERS}): the file was edited")
    layers = [_build_layer(path, i, entry) for i, entry in enumerate(header["layers"])]
    # before memory is allocated for them: the layers' parameters must fit in
    # the file's parameter arrays (a hand-edited width would otherwise
    # allocate gigabytes before the shapes are compared)
    declared = sum(math.prod(shape) for layer in layers for shape in layer.param_shapes().values())
    stored = sum(size for name, size in file.member_sizes.items() if name.startswith("params/"))
    if declared * np.dtype(header["dtype"]).itemsize > stored:
        raise _bad(path, f"the header's layers have {declared} parameters, more than the "
                         f"file's parameter arrays hold")
    backend = header["backend"] if backend is None else backend
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # warned when it was built
            # (a seed beyond today's cap, from an older nnc, is kept as written)
            model = Sequential(*layers, dtype=header["dtype"], backend=backend,
                               seed=seed if seed is None or seed <= MAX_SEED else 0)
    except ValueError as exc:
        raise _bad(path, f"cannot build the model the header describes: {exc}") from None
    model.seed = seed  # as written (None too: not today's nnc.set_seed default)
    if seed is None or seed > MAX_SEED:  # re-seeded in place (the layers share it); the
        # file's generator state, when it has one, is restored after this
        model.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    return model


def _expected_model_arrays(path, model, arrays):
    """Check that ``arrays`` has exactly the model's params and buffers."""
    entries = _model_entries(model)
    for name, i, target in entries:
        if name not in arrays:
            raise _bad(path, f"array {name!r} for layer {i} ({model.layers[i]!r}) is missing")
        array = arrays[name]
        if array.shape != target.shape:
            raise _bad(path, f"array {name!r} has shape {list(array.shape)}, but layer {i} "
                             f"({model.layers[i]!r}) of the header's architecture needs "
                             f"{list(target.shape)}")
        if array.dtype != model.dtype:
            raise _bad(path, f"array {name!r} has dtype {array.dtype}, the model {model.dtype}")
        _check_values(path, name, array, non_negative=_never_negative(name, ()))
    extra = sorted(set(arrays) - {name for name, _, _ in entries})
    if extra:
        raise _bad(path, f"array {extra[0]!r} does not belong to any layer of the header's "
                         "architecture")


def _check_values(path, name, array, non_negative=None):
    """No NaN/Inf in ``array`` (a parameter, buffer or optimizer state), and
    no negative value if ``non_negative`` (what the array holds) is given.
    The History is not checked: a diverged loss is legitimately NaN."""
    try:
        as_finite(array, f"array {name!r}", array.dtype, non_negative)
    except ValueError as exc:
        raise _bad(path, str(exc)) from None


def _check_rng_state(path, field, state, generator):
    try:
        check_generator_state(state, f"header field {field!r}", generator)
    except ValueError as exc:
        raise _bad(path, str(exc)) from None
    return state


def _load_model_file(file, backend=None):
    model = _build_model(file, backend)
    arrays = {k: v for k, v in file.arrays().items() if k.startswith(("params/", "buffers/"))}
    _expected_model_arrays(file.path, model, arrays)
    rng_state = file.header.get("model_rng")
    if rng_state is not None:
        _check_rng_state(file.path, "model_rng", rng_state, model.rng)
    for name, value in _model_arrays(model).items():
        value[...] = arrays[name]
    if rng_state is not None:
        model.rng.bit_generator.state = rng_state
    return model


def load_model(path, backend=None):
    """The ``Sequential`` saved at ``path`` (by ``model.save`` or a
    checkpoint), predicting bit-identically to the saved one. ``backend``
    overrides the saved backend ("cython" or "numpy")."""
    if backend is not None:
        get_backend(backend)  # a bad name is the argument's fault, not the file's
    return _load_model_file(_File(path), backend)


load = load_model


# --- checkpoints -----------------------------------------------------------------
def _check_same_architecture(path, header, model):
    if header["dtype"] != model.dtype.name:
        raise _bad(path, f"the checkpoint is {header['dtype']}, the trainer's model "
                         f"{model.dtype.name}")
    saved = header["layers"]
    if len(saved) != len(model.layers):
        raise _bad(path, f"the checkpoint has {len(saved)} layers, the trainer's model "
                         f"{len(model.layers)}")
    for i, (entry, layer) in enumerate(zip(saved, model.layers)):
        if not isinstance(entry, dict) or entry.get("class") != type(layer).__name__:
            got = entry.get("class") if isinstance(entry, dict) else entry
            raise _bad(path, f"layer {i} is {got!r} in the checkpoint but "
                             f"{type(layer).__name__} in the trainer's model")
        config = layer.config()
        saved_config = entry.get("config", {})
        for key in sorted(set(config) | set(saved_config)):
            if key == "init":  # the weights come from the file
                continue
            if saved_config.get(key) != config.get(key):
                raise _bad(path, f"layer {i} ({type(layer).__name__}) has {key}="
                                 f"{saved_config.get(key)!r} in the checkpoint but "
                                 f"{config.get(key)!r} in the trainer's model")


def _optimizer_state(path, header, optimizer, arrays, n_params, dtype):
    entry = header.get("optimizer")
    if not isinstance(entry, dict):
        raise _bad(path, "not a checkpoint (no optimizer state): it holds a model only; "
                         "use nnc.load(path) for it")
    if entry.get("type") != type(optimizer).__name__:
        raise _bad(path, f"the checkpoint's optimizer is {entry.get('type')!r}, the "
                         f"trainer's {type(optimizer).__name__}")
    config = entry.get("config")
    if not isinstance(config, dict) or set(config) != set(optimizer.config()):
        raise _bad(path, f"optimizer config {config!r} must have the keys "
                         f"{sorted(optimizer.config())}")
    try:
        rebuilt = type(optimizer)(**config)
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"optimizer config {config!r} is invalid: {exc}") from None
    t = entry.get("t")
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise _bad(path, f"optimizer step t must be a non-negative int, got {t!r}")
    names = sorted(rebuilt.state_names)
    if sorted(entry.get("state", [])) != names or sorted(optimizer.state_names) != names:
        raise _bad(path, f"the checkpoint's {entry['type']}{config} has state arrays "
                         f"{sorted(entry.get('state', []))}; the trainer's {optimizer!r} has "
                         f"{sorted(optimizer.state_names)}: build the optimizer with the "
                         "checkpoint's settings")
    state = {}
    for name in names:
        array = arrays.get(f"optimizer/{name}")
        if array is None:
            raise _bad(path, f"optimizer state array 'optimizer/{name}' is missing")
        if array.shape != (n_params,) or array.dtype != dtype:
            raise _bad(path, f"optimizer state 'optimizer/{name}' has shape "
                             f"{list(array.shape)} and dtype {array.dtype}, expected "
                             f"[{n_params}] and {dtype}")
        _check_values(path, f"optimizer/{name}", array,
                      non_negative=_never_negative(f"optimizer/{name}", rebuilt.squared_state))
        state[name] = array
    extra = sorted(k for k in arrays if k.startswith("optimizer/")
                   and k.split("/", 1)[1] not in state)
    if extra:
        raise _bad(path, f"unexpected optimizer array {extra[0]!r}")
    return {"type": entry["type"], "config": rebuilt.config(), "t": t, "state": state}


def _history(path, arrays, extra):
    parts = {group: {} for group in HISTORY_GROUPS}
    for name, array in arrays.items():
        _, group, key = (name.split("/", 2) + ["", ""])[:3]
        if group not in parts or not key:
            raise _bad(path, f"unexpected history array {name!r}")
        parts[group][key] = array.tolist()
    extra = extra if isinstance(extra, dict) else {}
    for group in HISTORY_GROUPS:
        more = extra.get(group) or {}
        if not isinstance(more, dict) or not all(isinstance(v, list) for v in more.values()):
            raise _bad(path, f"header field trainer.history.{group} must map names to lists")
        parts[group].update(more)
    meta = extra.get("meta") or {}
    if not isinstance(meta, dict):
        raise _bad(path, "header field trainer.history.meta must be a JSON object")
    history = History()
    for group in HISTORY_GROUPS:
        if parts[group] or hasattr(history, group):
            target = getattr(history, group, None)
            if target is None:
                target = {}
                setattr(history, group, target)
            target.update(parts[group])
    if meta or hasattr(history, "meta"):
        history.meta = dict(meta)
    return history


def load_checkpoint(trainer, path):
    """Restore a checkpoint into ``trainer`` (its model must have the same
    architecture and dtype, its optimizer the same type and settings). Every
    check runs before anything is changed: on ValueError the trainer is as
    it was."""
    trainer.model._check_views(writes=("params", "buffers"))  # (before anything changes)
    file = _File(path)
    header, model = file.header, trainer.model
    if header.get("kind") != "checkpoint":
        raise _bad(file.path, f"not a checkpoint (kind {header.get('kind')!r}): use "
                              "nnc.load(path) for a saved model")
    _check_same_architecture(file.path, header, model)
    arrays = file.arrays()
    model_arrays = {k: v for k, v in arrays.items() if k.startswith(("params/", "buffers/"))}
    _expected_model_arrays(file.path, model, model_arrays)
    optimizer = _optimizer_state(file.path, header, trainer.optimizer,
                                 {k: v for k, v in arrays.items() if k.startswith("optimizer/")},
                                 model.n_params, model.dtype)
    state = header.get("trainer")
    if not isinstance(state, dict):
        raise _bad(file.path, "header field 'trainer' is missing")
    step_count = state.get("step_count")
    try:
        step_count = check_step(step_count, "trainer step_count")
    except ValueError as exc:
        raise _bad(file.path, str(exc)) from None
    rng = _check_rng_state(file.path, "trainer.rng", state.get("rng"), trainer.rng)
    model_rng = header.get("model_rng")
    if model_rng is not None:
        _check_rng_state(file.path, "model_rng", model_rng, model.rng)
    history = _history(file.path, {k: v for k, v in arrays.items() if k.startswith("history/")},
                       state.get("history"))
    current = _trainer_config(trainer)
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    differences = [f"{key}={value!r} (now {current.get(key)!r})"
                   for key, value in sorted(saved.items()) if current.get(key) != value]
    now = trainer.optimizer.config()
    replaced = [f"{key}={value!r} (was {now.get(key)!r})"
                for key, value in sorted(optimizer["config"].items()) if now.get(key) != value]
    # the file's checks passed: apply; load_state_dict checks the rest
    # (e.g. the optimizer's settings against the model's dtype) and on
    # refusal the model's arrays are put back
    before = {name: value.copy() for name, value in _model_arrays(model).items()}
    for name, value in _model_arrays(model).items():
        value[...] = model_arrays[name]
    try:
        trainer.load_state_dict({
            "params": model.flat_params.copy(),
            "buffers": [{k: v.copy() for k, v in layer.buffers.items()}
                        for layer in model.layers],
            "optimizer": optimizer, "step_count": step_count, "rng": rng,
            "history": history.to_dict(), "model_rng": model_rng,
        })
    except BaseException as exc:  # (Ctrl-C too) the model as it was
        for name, value in _model_arrays(model).items():
            value[...] = before[name]
        if isinstance(exc, (ValueError, TypeError)):
            raise _bad(file.path, str(exc)) from exc
        raise
    trainer.history = history  # with every part (load_state_dict may know fewer)
    if differences:  # (only once the checkpoint is in)
        warnings.warn(f"the checkpoint was trained with {', '.join(differences)}: training "
                      "goes on, but not as the original run would have", UserWarning,
                      stacklevel=3)
    if replaced:
        warnings.warn(f"the checkpoint's optimizer settings replace the trainer's: "
                      f"{', '.join(replaced)}", UserWarning, stacklevel=3)
    return trainer
