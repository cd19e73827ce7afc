import pytest

from mnist_cnn import files


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.json"
    files.write_json(target, {"x": 1})
    files.write_json(target, {"x": 2})
    assert target.read_text() == '{\n  "x": 2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_crash_mid_save_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")

    def crashing_save(path):
        path.write_bytes(b"half a mod")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        files.save_with(target, crashing_save)
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
