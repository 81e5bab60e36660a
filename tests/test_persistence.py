"""model.save / nnc.load, checkpoints and resume_from, and files that are
truncated, corrupted, from another version or edited by hand."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import nnc
from archive_edits import rewrite
from nnc import persistence


@pytest.fixture(scope="module")
def data():
    X, y = nnc.datasets.load_digits()
    return X[:192], y[:192]


def make_model(backend="cython", dtype="float32", seed=0, hidden=16):
    return nnc.Sequential(nnc.Dense(64, hidden, bias=False), nnc.BatchNorm(hidden), nnc.ReLU(),
                          nnc.Dropout(0.25), nnc.Dense(hidden, 10), nnc.Tanh(),
                          nnc.Dense(10, 10), nnc.LeakyReLU(0.1), nnc.Dense(10, 10),
                          nnc.Sigmoid(), nnc.Dense(10, 10),
                          dtype=dtype, backend=backend, seed=seed)


def make_trainer(model, seed=7):
    return nnc.Trainer(model, optimizer=nnc.Adam(3e-3), batch_size=32, l2=1e-4, clip_norm=5.0,
                       schedule=nnc.schedules.LinearDecay(3e-3, 1e-4, decay_steps=20), seed=seed)


def trained(data, backend="cython", dtype="float32", epochs=1):
    trainer = make_trainer(make_model(backend, dtype))
    trainer.fit(*data, epochs=epochs, verbose=False)
    return trainer


# --- round trip ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_bit_identically(tmp_path, data, backend_name, dtype):
    trainer = trained(data, backend_name, dtype)
    model = trainer.model
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = nnc.load(path)
    assert loaded.backend.name == backend_name and loaded.dtype == model.dtype
    assert loaded.seed == model.seed
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    assert np.array_equal(loaded.predict(data[0]), model.predict(data[0]))
    assert np.array_equal(loaded.flat_params, model.flat_params)
    for mine, theirs in zip(model.layers, loaded.layers):
        assert mine.buffers.keys() == theirs.buffers.keys()
        for name in mine.buffers:  # batch-norm running statistics
            assert np.array_equal(mine.buffers[name], theirs.buffers[name])
    assert not np.all(model.layers[1].buffers["running_mean"] == 0)
    # the generator (dropout masks) is saved too: training both goes the same way
    a, b = nnc.Trainer(model, seed=3), nnc.Trainer(loaded, seed=3)
    a.fit(*data, epochs=1, verbose=False)
    b.fit(*data, epochs=1, verbose=False)
    assert np.array_equal(model.flat_params, loaded.flat_params)


def test_file_is_an_npz_with_a_json_header(tmp_path, data):
    model = trained(data).model
    path = str(tmp_path / "model.npz")
    model.save(path, metadata={"note": "digits"})
    with np.load(path, allow_pickle=False) as arrays:
        assert np.array_equal(arrays["params/0.W"], model.layers[0].params["W"])
        assert np.array_equal(arrays["buffers/1.running_var"],
                              model.layers[1].buffers["running_var"])
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read("header.json"))
    assert header["format"] == "nnc" and header["format_version"] == persistence.FORMAT_VERSION
    assert header["nnc_version"] == nnc.__version__ and header["kind"] == "model"
    assert header["dtype"] == "float32" and header["backend"] == "cython" and header["seed"] == 0
    assert [layer["class"] for layer in header["layers"]][:4] == ["Dense", "BatchNorm", "ReLU",
                                                                  "Dropout"]
    assert header["layers"][1]["config"] == {"num_features": 16, "momentum": 0.9, "eps": 1e-5}
    assert header["arrays"]["params/0.W"] == {"shape": [64, 16], "dtype": "float32"}
    assert persistence.read_header(path)["metadata"] == {"note": "digits"}
    assert not [name for name in os.listdir(tmp_path) if name != "model.npz"]  # no temp left


def test_load_on_the_other_backend(tmp_path, data):
    model = trained(data).model
    model.save(tmp_path / "m.npz")
    loaded = nnc.load(tmp_path / "m.npz", backend="numpy")
    assert loaded.backend.name == "numpy"
    np.testing.assert_allclose(loaded.predict(data[0]), model.predict(data[0]), atol=1e-5)


def test_save_refuses_bad_arguments(tmp_path, data):
    model = make_model()
    with pytest.raises(ValueError, match="folder"):
        model.save(tmp_path)
    with pytest.raises(TypeError, match="JSON"):
        model.save(tmp_path / "m.npz", metadata={"f": print})
    with pytest.raises(TypeError, match="metadata"):
        model.save(tmp_path / "m.npz", metadata=[1])
    with pytest.raises(TypeError, match="path"):
        model.save(3.5)
    with pytest.raises(FileNotFoundError):
        nnc.load(tmp_path / "nothing.npz")


# --- checkpoints and resume_from ------------------------------------------------
def test_resume_from_continues_bit_identically(tmp_path, data, backend_name):
    path = tmp_path / "ckpt.npz"
    uninterrupted = make_trainer(make_model(backend_name))
    uninterrupted.fit(*data, epochs=3, verbose=False)

    first = make_trainer(make_model(backend_name))
    first.fit(*data, epochs=1, verbose=False)
    first.save_checkpoint(path)
    # a fresh process would build everything anew, with any seeds
    resumed = make_trainer(make_model(backend_name, seed=99), seed=5)
    resumed.fit(*data, epochs=3, verbose=False, resume_from=path)  # epochs: the total

    assert resumed.step_count == uninterrupted.step_count
    assert np.array_equal(resumed.model.flat_params, uninterrupted.model.flat_params)
    for a, b in zip(resumed.model.layers, uninterrupted.model.layers):
        for name in a.buffers:
            assert np.array_equal(a.buffers[name], b.buffers[name])
    assert resumed.history.steps == uninterrupted.history.steps
    assert resumed.history.epochs == uninterrupted.history.epochs
    for name, state in uninterrupted.optimizer.state.items():
        assert np.array_equal(resumed.optimizer.state[name], state)
    assert resumed.optimizer.t == uninterrupted.optimizer.t


def test_resume_when_everything_is_done_trains_nothing(tmp_path, data):
    trainer = trained(data, epochs=2)
    trainer.save_checkpoint(tmp_path / "c.npz")
    again = make_trainer(make_model())
    with pytest.warns(UserWarning, match="nothing to train"):
        again.fit(*data, epochs=2, verbose=False, resume_from=tmp_path / "c.npz")
    assert again.step_count == trainer.step_count
    assert np.array_equal(again.model.flat_params, trainer.model.flat_params)


def test_checkpoint_is_a_loadable_model_and_a_model_is_not_a_checkpoint(tmp_path, data):
    trainer = trained(data)
    trainer.save_checkpoint(tmp_path / "c.npz")
    assert np.array_equal(nnc.load(tmp_path / "c.npz").predict(data[0]),
                          trainer.model.predict(data[0]))
    trainer.model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="not a checkpoint"):
        make_trainer(make_model()).load_checkpoint(tmp_path / "m.npz")


@pytest.mark.parametrize("change, match", [
    (lambda: make_trainer(make_model(hidden=12)), "out_features=16 in the checkpoint but 12"),
    (lambda: nnc.Trainer(make_model(), optimizer=nnc.SGD(0.1)), "optimizer is 'Adam'"),
    (lambda: make_trainer(make_model(dtype="float64")), "float32"),
    (lambda: nnc.Trainer(nnc.Sequential(nnc.Dense(64, 10)), optimizer=nnc.Adam()), "layers"),
])
def test_resume_into_a_different_trainer_is_refused_and_changes_nothing(tmp_path, data,
                                                                         change, match):
    trained(data).save_checkpoint(tmp_path / "c.npz")
    other = change()
    before = other.model.flat_params.copy()
    with pytest.raises(ValueError, match=match):
        other.fit(*data, epochs=2, verbose=False, resume_from=tmp_path / "c.npz")
    assert np.array_equal(other.model.flat_params, before) and other.step_count == 0


def test_resume_warns_when_trainer_settings_differ(tmp_path, data):
    trained(data).save_checkpoint(tmp_path / "c.npz")
    other = nnc.Trainer(make_model(), optimizer=nnc.Adam(3e-3), batch_size=64)
    with pytest.warns(UserWarning, match=r"batch_size=32 \(now 64\), clip_norm=5.0 \(now None\)"):
        other.load_checkpoint(tmp_path / "c.npz")


def test_interrupted_write_leaves_the_previous_file_intact(tmp_path, data, monkeypatch):
    trainer = trained(data)
    path = tmp_path / "ckpt.npz"
    trainer.save_checkpoint(path)
    saved = trainer.model.predict(data[0])
    trainer.fit(*data, epochs=1, verbose=False)  # the weights move on

    calls = []
    real = persistence._write_array

    def dying_writer(archive, name, array):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed mid-write")
        real(archive, name, array)

    monkeypatch.setattr(persistence, "_write_array", dying_writer)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(path)
    assert len(calls) == 3
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the partial temporary file is gone
    assert np.array_equal(nnc.load(path).predict(data[0]), saved)
    make_trainer(make_model()).load_checkpoint(path)  # and it is still a whole checkpoint


# --- bad files --------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, data):
    path = tmp_path / "model.npz"
    trained(data).save_checkpoint(path)
    return path


@pytest.mark.parametrize("keep", [0.5, 0.95, 40])
def test_truncated_file(saved, keep):
    content = saved.read_bytes()
    saved.write_bytes(content[:int(keep * len(content)) if keep < 1 else keep])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        nnc.load(saved)


def test_empty_and_foreign_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        nnc.load(tmp_path / "empty.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not an nnc file"):
        nnc.load(tmp_path / "plain.npy")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no header.json"):
        nnc.load(tmp_path / "other.npz")


def test_corrupted_array_bytes(saved):
    content = bytearray(saved.read_bytes())
    weights = nnc.load(saved).layers[0].params["W"].tobytes()
    start = bytes(content).find(weights)
    assert start > 0
    content[start + len(weights) // 2] ^= 0xFF
    saved.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="corrupted"):
        nnc.load(saved)


def test_wrong_format_version(saved):
    rewrite(saved, header=lambda h: h.update(format_version=99, nnc_version="9.0"))
    with pytest.raises(ValueError, match="format version 99 .*reads format version 1"):
        nnc.load(saved)
    rewrite(saved, header=lambda h: h.update(format_version="1"))
    with pytest.raises(ValueError, match="format_version must be an int"):
        nnc.load(saved)
    rewrite(saved, header=lambda h: h.update(format="keras", format_version=1))
    with pytest.raises(ValueError, match="format is 'keras'"):
        nnc.load(saved)


def test_unknown_layer_class(saved):
    rewrite(saved, header=lambda h: h["layers"][2].update({"class": "os.system"}))
    with pytest.raises(ValueError, match="layer 2 has unknown class 'os.system'"):
        nnc.load(saved)


def test_bad_layer_config(saved):
    rewrite(saved, header=lambda h: h["layers"][3]["config"].update(p=2.0))
    with pytest.raises(ValueError, match=r"layer 3 \(Dropout\) has a bad config"):
        nnc.load(saved)
    rewrite(saved, header=lambda h: h["layers"][3]["config"].update(command="rm -rf /"))
    with pytest.raises(ValueError, match="layer 3"):
        nnc.load(saved)


def test_header_that_does_not_describe_a_model(saved):
    rewrite(saved, header=lambda h: h["layers"][4]["config"].update(in_features=15))
    with pytest.raises(ValueError, match="cannot build the model .*expects 15 input features"):
        nnc.load(saved)
    rewrite(saved, header=lambda h: h["layers"][4]["config"].update(in_features=16) or
            h.update(backend="gpu"))
    with pytest.raises(ValueError, match="cannot build the model .*backend"):
        nnc.load(saved)
    rewrite(saved, header=lambda h: h.update(backend="cython", dtype="int8"))
    with pytest.raises(ValueError, match="dtype"):
        nnc.load(saved)


def test_architecture_that_does_not_match_the_arrays(saved):
    def wider(h):
        h["layers"][0]["config"]["out_features"] = 17
        h["layers"][1]["config"]["num_features"] = 17
        h["layers"][4]["config"]["in_features"] = 17

    rewrite(saved, header=wider)
    with pytest.raises(ValueError, match=r"'params/0.W' has shape \[64, 16\], but layer 0 .* "
                                         r"needs \[64, 17\]"):
        nnc.load(saved)


def test_header_shape_that_does_not_match_an_array(saved):
    rewrite(saved, header=lambda h: h["arrays"]["params/0.W"].update(shape=[16, 64]))
    with pytest.raises(ValueError, match=r"'params/0.W' has shape \[64, 16\] .* header lists "
                                         r"shape \[16, 64\]"):
        nnc.load(saved)


def test_missing_and_unlisted_arrays(saved, tmp_path):
    rewrite(saved, drop=["params/4.b.npy"])
    with pytest.raises(ValueError, match="'params/4.b' listed in the header is missing"):
        nnc.load(saved)

    def forget(h):
        del h["arrays"]["params/4.b"]

    rewrite(saved, header=forget, add={"params/4.b.npy": b"\x93NUMPY"})
    with pytest.raises(ValueError, match="'params/4.b' in the archive is not listed"):
        nnc.load(saved)
    rewrite(saved, drop=["params/4.b.npy"])
    with pytest.raises(ValueError, match=r"'params/4.b' for layer 4 .* is missing"):
        nnc.load(saved)


def test_header_that_is_not_json(saved):
    rewrite(saved, add={"header.json": b"{not json"})
    with pytest.raises(ValueError, match="not valid JSON"):
        nnc.load(saved)


class _Exploit:
    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_are_never_loaded(saved, tmp_path):
    _Exploit.marker = str(tmp_path / "pwned")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([_Exploit()], dtype=object), allow_pickle=True)
    rewrite(saved, header=lambda h: h["arrays"].update({"params/4.b": {"shape": [1],
                                                                       "dtype": "float32"}}),
            add={"params/4.b.npy": buffer.getvalue()})
    with pytest.raises(ValueError, match="never hold pickled"):
        nnc.load(saved)
    rewrite(saved, add={"header.json": pickle.dumps(_Exploit())})
    with pytest.raises(ValueError):
        nnc.load(saved)
    assert not os.path.exists(_Exploit.marker)


def test_bad_checkpoint_state_changes_nothing(saved, data):
    rewrite(saved, header=lambda h: h["optimizer"]["config"].update(beta1=7))
    trainer = make_trainer(make_model())
    before = trainer.model.flat_params.copy()
    with pytest.raises(ValueError, match="optimizer config"):
        trainer.load_checkpoint(saved)
    rewrite(saved, header=lambda h: h["optimizer"]["config"].update(beta1=0.9) or
            h["trainer"]["rng"].update(bit_generator="MT19937"))
    with pytest.raises(ValueError, match="trainer.rng"):
        trainer.load_checkpoint(saved)
    assert np.array_equal(trainer.model.flat_params, before) and trainer.step_count == 0


def test_save_into_a_missing_folder_names_the_path(tmp_path):
    path = tmp_path / "missing" / "m.npz"
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        make_model().save(path)
    assert str(path) in str(info.value) and ".tmp" not in str(info.value)


def test_metadata_with_numpy_values_is_saved_as_plain_json(tmp_path):
    path = tmp_path / "m.npz"
    make_model().save(path, metadata={"acc": np.float32(0.5), "epochs": np.int64(3),
                                      "sizes": np.array([64, 10])})
    metadata = persistence.read_header(path)["metadata"]
    assert metadata == {"acc": 0.5, "epochs": 3, "sizes": [64, 10]}
    with pytest.raises(TypeError, match="metadata"):
        make_model().save(path, metadata={"acc": np.float32("nan")})


def test_nan_in_a_history_list_of_non_numbers_names_the_history(tmp_path, data):
    trainer = trained(data)
    trainer.history.steps["note"] = ["a", float("nan")]
    with pytest.raises(ValueError, match=r"history's steps\['note'\]"):
        trainer.save_checkpoint(tmp_path / "c.npz")
    trainer.history.steps["note"] = ["a", np.float32(1.5)]  # NumPy scalars are converted
    trainer.save_checkpoint(tmp_path / "c.npz")


def test_header_metadata_that_is_not_an_object(saved):
    rewrite(saved, header=lambda h: h.update(metadata=[1]))
    for read in (persistence.read_header, nnc.load):
        with pytest.raises(ValueError, match="header field 'metadata' must be a JSON object"):
            read(saved)


def _replace_array(path, name, change):
    """Rewrite member ``name`` (e.g. "params/0.W") after ``change(array)``
    edits it in place: same shape and dtype, fresh CRC, as a hand edit."""
    with zipfile.ZipFile(path) as archive:
        array = np.load(io.BytesIO(archive.read(name + ".npy")), allow_pickle=False)
    change(array)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    rewrite(path, add={name + ".npy": buffer.getvalue()})


@pytest.mark.parametrize("name, change, match", [
    ("params/0.W", lambda a: a.__setitem__((0, 0), np.nan), "contains NaN or Inf"),
    ("params/4.b", lambda a: a.__setitem__(1, -np.inf), "contains NaN or Inf"),
    ("buffers/1.running_mean", lambda a: a.__setitem__(0, np.inf), "contains NaN or Inf"),
    ("buffers/1.running_var", lambda a: a.__setitem__(2, np.nan), "contains NaN or Inf"),
    ("buffers/1.running_var", lambda a: a.__setitem__(2, -0.5),
     r"contains negative values \(min -0.5\).*running variance"),
])
def test_non_finite_parameters_and_negative_variance_are_refused(saved, data, name, change,
                                                                 match):
    _replace_array(saved, name, change)
    for read in (nnc.load, make_trainer(make_model()).load_checkpoint):
        with pytest.raises(ValueError, match=rf"{saved.name}: array '{name}' {match}"):
            read(saved)
    trainer = make_trainer(make_model())
    before = trainer.model.flat_params.copy()
    with pytest.raises(ValueError):
        trainer.fit(*data, epochs=2, verbose=False, resume_from=saved)
    assert np.array_equal(trainer.model.flat_params, before) and trainer.step_count == 0


@pytest.mark.parametrize("name, value, match", [
    ("optimizer/m", np.nan, "contains NaN or Inf"),
    ("optimizer/v", np.inf, "contains NaN or Inf"),
    ("optimizer/v", -1.0, "contains negative values.*squared gradients"),
])
def test_non_finite_or_negative_optimizer_state_is_refused(saved, name, value, match):
    _replace_array(saved, name, lambda a: a.__setitem__(3, value))
    trainer = make_trainer(make_model())
    before = trainer.model.flat_params.copy()
    with pytest.raises(ValueError, match=rf"{saved.name}: array '{name}' {match}"):
        trainer.load_checkpoint(saved)
    assert np.array_equal(trainer.model.flat_params, before) and trainer.step_count == 0
    nnc.load(saved)  # the model part of the checkpoint is fine


def test_a_history_with_a_nan_loss_still_loads(tmp_path, data):
    trainer = trained(data)
    trainer.history.steps["loss"][-1] = float("nan")  # a diverged step is worth keeping
    trainer.save_checkpoint(tmp_path / "c.npz")
    resumed = make_trainer(make_model()).load_checkpoint(tmp_path / "c.npz")
    assert np.isnan(resumed.history.steps["loss"][-1])


def _npy(shape, descr="<f8", payload=b""):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + payload


def test_a_forged_array_shape_is_refused_before_it_is_allocated(saved):
    """2**40 float64 would be 8 TiB: refused from the sizes, never allocated."""
    name = "history/steps/loss"
    rewrite(saved, header=lambda h: h["arrays"][name].update(shape=[2 ** 40]),
            add={name + ".npy": _npy((2 ** 40,), payload=b"\0" * 8)})
    with pytest.raises(ValueError, match="fewer bytes than the header's shape"):
        nnc.load(saved)


def test_a_npy_header_that_disagrees_with_the_file_header_is_refused(saved):
    name = "history/steps/loss"
    with zipfile.ZipFile(saved) as archive:
        listed = json.loads(archive.read("header.json"))["arrays"][name]["shape"]
    rewrite(saved, add={name + ".npy": _npy((2 ** 40,), payload=b"\0" * 8 * listed[0])})
    with pytest.raises(ValueError, match=r"shape \[1099511627776\].*header lists shape"):
        nnc.load(saved)


@pytest.mark.parametrize("what", ["running_var", "adam_v"])
def test_what_load_would_refuse_is_not_saved(data, tmp_path, what):
    trainer = trained(data)
    if what == "running_var":
        trainer.model.layers[1].buffers["running_var"][0] = -1
    else:
        trainer.optimizer.state["v"][3] = -1
    with pytest.raises(ValueError, match="never negative.*nnc.load would refuse"):
        trainer.save_checkpoint(tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()
    if what == "running_var":
        with pytest.raises(ValueError, match="never negative"):
            trainer.model.save(tmp_path / "m.npz")
        with pytest.raises(ValueError, match="running variance"):
            trainer.load_state_dict(trainer.state_dict())


@pytest.mark.parametrize("path", ["missing-folder/", "."])
def test_saving_to_a_folder_name_is_refused_naming_the_path(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"path {path!r} names a folder"):
        make_model().save(path)
    with pytest.raises(ValueError, match="names a folder"):
        nnc.callbacks.ModelCheckpoint(path)


def test_a_header_beyond_any_nnc_header_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(persistence, "_MAX_HEADER_BYTES", 1000)  # (64 MiB otherwise)
    path = tmp_path / "big.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("header.json", b'{"format": "nnc"' + b" " * 1000 + b"}")
    with pytest.raises(ValueError, match="header.json inflates to"):
        nnc.load(path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        path = tmp_path / "pipe"
        os.mkfifo(path)
    else:
        path = "/dev/zero"
        if not os.path.exists(path):
            pytest.skip("no /dev/zero here")
    for use in (lambda: nnc.load(path), lambda: make_model().save(path)):
        with pytest.raises(ValueError, match="is not a regular file"):
            use()


def test_saving_through_a_symlink_updates_its_target(tmp_path):
    target, link = tmp_path / "real.npz", tmp_path / "link.npz"
    make_model(seed=0).save(target)
    link.symlink_to(target)
    make_model(seed=1).save(link)
    assert link.is_symlink()
    np.testing.assert_array_equal(nnc.load(target).flat_params, make_model(seed=1).flat_params)


@pytest.mark.parametrize("path", [1, True, None])
def test_history_files_take_file_names_not_descriptors(path):
    with pytest.raises(TypeError, match="path must be a file name"):
        nnc.History().save(path)
    with pytest.raises(TypeError, match="path must be a file name"):
        nnc.History.load(path)


def test_resuming_without_the_checkpoints_schedule_warns(tmp_path, data):
    X, y = data
    trainer = make_trainer(make_model())  # a LinearDecay schedule
    trainer.fit(X, y, epochs=1, verbose=False)
    trainer.save_checkpoint(tmp_path / "c.npz")
    plain = nnc.Trainer(make_model(), optimizer=nnc.Adam(3e-3), batch_size=32, l2=1e-4,
                        clip_norm=5.0, seed=7)
    with pytest.warns(UserWarning, match=r"schedule='LinearDecay\(.*\(now None\)"):
        plain.load_checkpoint(tmp_path / "c.npz")


def test_save_refuses_a_header_load_would_refuse(tmp_path):
    huge = {"vocabulary": "w" * (persistence._MAX_HEADER_BYTES + 1)}
    with pytest.raises(ValueError, match="more than the .* nnc.load reads"):
        make_model().save(tmp_path / "m.npz", metadata=huge)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary file left


def test_history_and_csv_logs_may_go_to_a_stream(tmp_path):
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null here")
    nnc.History().save("/dev/null")
    nnc.callbacks.CSVLogger("/dev/null")  # a stream: not refused


def test_an_archive_that_would_inflate_enormously_is_refused_unread(tmp_path, monkeypatch):
    """A 'zip bomb': 64 MiB of zeros deflate to ~64 KiB. Beyond 100 times the
    file's size and an allowance (256 MiB; 16 MiB here) nothing is inflated
    (testzip once inflated every member first)."""
    monkeypatch.setattr(persistence, "_INFLATION_ALLOWANCE", 1 << 24)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("header.json", b"{}")
        archive.writestr("params/0.W.npy", bytes(64 << 20))
    with pytest.raises(ValueError, match=r"the archive's members would inflate to 671088\d\d "
                                         r"bytes from a file of \d+: not a file nnc wrote"):
        nnc.load(bomb)


def test_a_checkpoint_recompressed_by_another_tool_still_loads(tmp_path):
    """Its zero optimizer state deflates a thousandfold: still an nnc file."""
    X, y = np.zeros((4, 200), np.float32), np.zeros(4, np.int64)
    trainer = nnc.Trainer(nnc.Sequential(nnc.Dense(200, 100), nnc.ReLU(), nnc.Dense(100, 3),
                                         seed=0), optimizer=nnc.Adam(), batch_size=4)
    trainer.save_checkpoint(tmp_path / "c.npz")  # m and v: 80 KB of zeros each
    with zipfile.ZipFile(tmp_path / "c.npz") as source, \
            zipfile.ZipFile(tmp_path / "deflated.npz", "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    ratio = max(i.file_size / i.compress_size
                for i in zipfile.ZipFile(tmp_path / "deflated.npz").infolist())
    assert ratio > 100  # beyond the archive-wide ratio, within the allowance
    again = nnc.Trainer(nnc.Sequential(nnc.Dense(200, 100), nnc.ReLU(), nnc.Dense(100, 3),
                                       seed=1), optimizer=nnc.Adam(), batch_size=4)
    again.load_checkpoint(tmp_path / "deflated.npz")
    np.testing.assert_array_equal(again.model.flat_params, trainer.model.flat_params)
    again.fit(X, y, verbose=False)


def test_more_layers_than_load_builds_are_refused_by_save_and_load(tmp_path, monkeypatch):
    model = nnc.Sequential(nnc.Dense(2, 2), nnc.ReLU(), nnc.ReLU(), nnc.ReLU(), seed=0)
    model.save(tmp_path / "m.npz")
    monkeypatch.setattr(persistence, "_MAX_LAYERS", 3)  # (100 000 otherwise)
    with pytest.raises(ValueError, match="header lists 4 layers, more than any nnc model"):
        nnc.load(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="the model has 4 layers, more than the 3 nnc.load"):
        model.save(tmp_path / "again.npz")
    assert not (tmp_path / "again.npz").exists()
