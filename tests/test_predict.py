"""Tests for predict_files and `mnist-cnn predict`: mixed good and bad files, output shapes."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.cli import main
from mnist_cnn.inference import Predictor
from mnist_cnn.predict import expand_paths, predict_files
from mnist_cnn.preprocess import preprocess
from tests.realistic import (
    generate_realistic_images,
    naive_resize,
    realistic_pictures,
    rotated_source,
)

RESULT_KEYS = {"file", "digit", "confidence", "probabilities"}
# A result the model abstains on has digit None and says why (the CLI prints "not sure").
ABSTAINED_KEYS = RESULT_KEYS | {"reason"}
ANSWER_LINE = re.compile(r"(?:[0-9]|no answer) \((?P<probability>[0-9.]+)\)(?:: .+)?")


# Blank paper is answered, not an error: every answer field null, and the reason.
NO_DIGIT = "no digit found"


def check_no_digit(result: dict) -> None:
    assert result["digit"] is result["confidence"] is result["probabilities"] is None, result
    assert set(result) == ABSTAINED_KEYS and result["reason"].startswith(NO_DIGIT), result


def check_answer(result: dict) -> None:
    """An answered result: a digit with its probability, or None with a reason."""
    probabilities = result["probabilities"]
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-4
    assert result["confidence"] == max(probabilities)
    if result["digit"] is None:
        assert set(result) - {"top"} == ABSTAINED_KEYS and result["reason"], result
    else:
        assert set(result) - {"top"} == RESULT_KEYS, result
        assert result["digit"] == int(np.argmax(probabilities))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _bomb_png(side: int = 8000) -> bytes:
    """A small PNG whose header claims side x side pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.from_dir(tiny_run)


@pytest.fixture
def good_images(tmp_path: Path, mnist) -> list[Path]:
    """Three realistic digit pictures (font and MNIST digits on paper) in tmp_path/good/."""
    folder = tmp_path / "good"
    folder.mkdir()
    paths = []
    for name, data, _ in generate_realistic_images(3, 11, mnist.test.images, mnist.test.labels):
        paths.append(folder / name)
        paths[-1].write_bytes(data)
    return paths


@pytest.fixture
def mixed(tmp_path: Path, good_images: list[Path]) -> tuple[list[str], dict[str, str]]:
    """Good images interleaved with bad ones; returns (arguments, expected error per bad one)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "blank.png").write_bytes(_png(Image.new("L", (120, 90), 250)))
    (bad / "notes.png").write_bytes(b"shopping list: milk, eggs\n")
    full = _png(Image.new("RGB", (300, 300), (200, 30, 30)))
    (bad / "truncated.png").write_bytes(full[: len(full) // 2])
    (bad / "empty.png").write_bytes(b"")
    (bad / "bomb.png").write_bytes(_bomb_png())
    os.mkfifo(bad / "pipe.png")  # no writer: opening it would wait for ever
    expected = {
        str(bad / "blank.png"): NO_DIGIT,
        str(bad / "notes.png"): "not an image",
        str(bad / "truncated.png"): "truncated",
        str(bad / "empty.png"): "zero bytes",
        str(bad / "bomb.png"): "too large",
        str(tmp_path / "missing.png"): "no such file",
        str(tmp_path / "missing-dir"): "no such file",
        str(tmp_path / "none-*.png"): "matches",
        str(bad / "pipe.png"): "not a regular file",
        str(tmp_path / ("long" * 80 + ".png")): "File name too long",
        "": "empty argument",
    }
    good = [str(path) for path in good_images]
    arguments = [good[0], *list(expected)[:4], good[1], *list(expected)[4:], good[2]]
    return arguments, expected


@pytest.fixture
def model_batches(monkeypatch) -> list[int]:
    """The size of each batch Predictor.answers is called with, in order."""
    batches: list[int] = []
    original = Predictor.answers

    def counting(self, images):
        batches.append(len(images))
        return original(self, images)

    monkeypatch.setattr(Predictor, "answers", counting)
    return batches


def test_bad_files_get_errors_and_the_rest_one_batch(predictor, mixed, model_batches):
    arguments, expected = mixed
    results = predict_files(predictor, arguments)
    assert [result["file"] for result in results] == arguments  # input order kept
    assert model_batches == [3]  # every good image in one model call
    for result in results:
        if expected.get(result["file"]) == NO_DIGIT:
            check_no_digit(result)
        elif result["file"] in expected:
            assert set(result) == {"file", "error"}
            assert expected[result["file"]] in result["error"]
            if result["file"]:  # the name is in "file", once
                assert result["file"] not in result["error"]
        else:
            assert set(result) == RESULT_KEYS


def test_cli_mixed_files_exit_1_one_line_each(tiny_run, mixed, capsys):
    arguments, expected = mixed
    assert main(["predict", "--run", str(tiny_run), *arguments]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == len(arguments)
    for argument, line in zip(arguments, lines, strict=True):
        assert line.startswith(f"{argument}: ")
        if expected.get(argument) == NO_DIGIT:
            blank = "the image is blank (uniform, no ink)"
            assert line == f"{argument}: no answer: {NO_DIGIT}: {blank}"
        elif argument in expected:
            assert ": error: " in line and expected[argument] in line
        else:  # "7 (0.9931)", or "no answer (0.4123): <reason>" where the model abstains
            answer = ANSWER_LINE.fullmatch(line.removeprefix(f"{argument}: "))
            assert answer is not None, line
            assert 0 <= float(answer["probability"]) <= 1
    assert f"{len(expected) - 1} of {len(arguments)} images failed" in captured.err  # not blank
    assert "Traceback" not in captured.err


def test_cli_json_shape(tiny_run, mixed, capsys):
    arguments, expected = mixed
    assert main(["predict", "--run", str(tiny_run), "--json", *arguments]) == 1
    results = json.loads(capsys.readouterr().out)
    assert isinstance(results, list) and len(results) == len(arguments)
    for result in results:
        if expected.get(result["file"]) == NO_DIGIT:
            check_no_digit(result)
        elif result["file"] in expected:
            assert set(result) == {"file", "error"} and isinstance(result["error"], str)
        else:
            check_answer(result)


def test_pictures_without_a_digit_are_answered_exit_0(tiny_run, tmp_path, capsys):
    """Blank paper and a lone speck are answers (null digit, a reason), as the API gives them,
    not failures: the exit status stays 0 and --top adds nothing to them."""
    blank, speck = tmp_path / "blank.png", tmp_path / "speck.png"
    blank.write_bytes(_png(Image.new("L", (120, 90), 250)))
    dotted = Image.new("L", (200, 200), 250)
    dotted.putpixel((100, 100), 0)
    speck.write_bytes(_png(dotted))
    arguments = ["predict", "--run", str(tiny_run), "--top", "3", "--json", str(blank), str(speck)]
    assert main(arguments) == 0
    captured = capsys.readouterr()
    for result in json.loads(captured.out):
        check_no_digit(result)
    assert captured.err == ""


def test_top_k_best_first(tiny_run, good_images, capsys):
    arguments = [str(path) for path in good_images]
    assert main(["predict", "--run", str(tiny_run), "--top", "3", "--json", *arguments]) == 0
    for result in json.loads(capsys.readouterr().out):
        check_answer(result)
        top = result["top"]
        assert len(top) == 3 and top[0][1] == result["confidence"]
        assert result["digit"] in (None, top[0][0])
        assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
        assert [p for _, p in top] == sorted(result["probabilities"], reverse=True)[:3]
    assert main(["predict", "--run", str(tiny_run), "--top", "3", arguments[0]]) == 0
    assert len(re.findall(r"\b[0-9] \([0-9.]+\)", capsys.readouterr().out)) == 3
    assert main(["predict", "--run", str(tiny_run), "--top", "11", arguments[0]]) == 2


def test_save_preprocessed_writes_what_the_model_saw(tiny_run, good_images, tmp_path):
    out = tmp_path / "seen"
    arguments = [str(path) for path in good_images]
    assert (
        main(["predict", "--run", str(tiny_run), "--save-preprocessed", str(out), *arguments]) == 0
    )
    for path in good_images:
        saved = Image.open(out / f"{path.stem}.png")
        assert saved.size == (28, 28) and saved.mode == "L"
        expected = np.round(preprocess(path) * 255)
        assert np.array_equal(np.asarray(saved, dtype=float), expected)


def test_the_model_runs_in_batches_of_model_batch(
    predictor, good_images, model_batches, monkeypatch
):
    import mnist_cnn.predict as predict_module

    monkeypatch.setattr(predict_module, "MODEL_BATCH", 2)
    whole = predict_files(predictor, [str(path) for path in good_images])
    assert model_batches == [2, 1] and len(whole) == 3 and all("digit" in row for row in whole)


def test_a_file_name_cannot_forge_output_lines(tiny_run, good_images, tmp_path, capsys):
    forged = tmp_path / "fake.png: 7 (1.0000)\n\x1b[31mx.png"
    forged.write_bytes(good_images[0].read_bytes())
    assert main(["predict", "--run", str(tiny_run), str(forged)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "\x1b" not in lines[0]
    assert lines[0].startswith(str(tmp_path) + "/fake.png: 7 (1.0000)\\n\\x1b[31mx.png: ")


def test_save_preprocessed_to_a_file_is_refused_before_the_model_runs(
    tiny_run, good_images, tmp_path, capsys, monkeypatch
):
    def no_model(*_args, **_kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(Predictor, "answers", no_model)
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"a file, not a folder")
    arguments = ["predict", "--run", str(tiny_run), "--save-preprocessed", str(taken)]
    assert main([*arguments, str(good_images[0])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith(f"mnist-cnn: error: --save-preprocessed {taken}: cannot make")
    assert taken.read_bytes() == b"a file, not a folder"


def test_a_count_that_is_no_number_names_the_flag(tiny_run, good_images, capsys):
    assert main(["predict", "--run", str(tiny_run), "--top", "abc", str(good_images[0])]) == 2
    assert "argument --top: expected a positive integer, got 'abc'" in capsys.readouterr().err


def test_directory_and_glob_all_ok_exit_0(tiny_run, good_images, capsys):
    folder = good_images[0].parent
    (folder / "readme.txt").write_text("not an image suffix: skipped in a directory")
    assert main(["predict", "--run", str(tiny_run), str(folder), str(folder / "*.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The directory gives its images sorted; the glob repeats some of them: each once.
    assert [line.split(": ")[0] for line in lines] == sorted(map(str, good_images))


def test_expand_paths(tmp_path):
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    entries = expand_paths([tmp_path, tmp_path / "empty", tmp_path / "*.zip"])
    assert [(Path(e.file).name, e.error is None) for e in entries] == [
        ("a.jpg", True),
        ("b.PNG", True),
        ("empty", False),
        ("*.zip", False),
    ]
    assert "no images" in entries[2].error and "matches" in entries[3].error


def test_bad_run_dir_is_exit_1(tmp_path, good_images, capsys):
    assert main(["predict", str(good_images[0]), "--run", str(tmp_path / "no-run")]) == 1
    assert capsys.readouterr().err.startswith("mnist-cnn: error: ")


def test_single_image_does_not_call_model_predict(tiny_run, good_images, monkeypatch, capsys):
    import keras

    def forbidden(*args, **kwargs):
        raise AssertionError("model.predict costs tens of ms per call; use the compiled call")

    monkeypatch.setattr(keras.Model, "predict", forbidden)
    assert main(["predict", "--run", str(tiny_run), str(good_images[0])]) == 0
    assert capsys.readouterr().out.startswith(str(good_images[0]))


# The realistic-picture test compares the model with itself, so that it holds for any seed of
# the tutorial recipe. A fixed floor does not: over 2,000 pictures, tutorial models of seeds 0,
# 1 and 2 score 97.85%, 94.6% and 96.3% (benchmarks/README.md, "Predicting realistic
# pictures"); the printed half moves with what the one-epoch model learnt (seed 1 reads 52 of
# its 100 printed 6s as 5), the MNIST half with how well it reads rotated digits. Against the
# model's own reading of the MNIST digits behind the pictures, rotated by the same angles at
# 28x28 and otherwise untouched, the re-drawn pictures measured -2.5 to +1.5 points per 200
# digits (tutorial seeds 0-2, fast, best; 25 samples of 200, rotated by independent angles,
# which adds noise that the same angles take out): that gap is what preprocess loses to the
# rendering, whatever the model. The naive resize reads 12-18% of the pictures on every seed.
RENDERING_LOSS_MAX = 0.04  # MNIST half: pictures vs rotated sources, 8 of 200 digits
NAIVE_MARGIN_MIN = 0.70  # all pictures: preprocess vs naive resize (measured 77-86 points)


@pytest.mark.slow
def test_realistic_images_accuracy_vs_naive_resize(tutorial_run, mnist, tmp_path, capsys):
    """The tutorial model on realistic pictures: preprocess undoes the rendering, not the
    model's limits. Bounds relative to the same model, so any tutorial seed passes."""
    count, seed = 400, 0  # picture seed 0: the first, not chosen for its result
    pictures = realistic_pictures(count, seed, mnist.test.images, mnist.test.labels)
    folder = tmp_path / "realistic"
    folder.mkdir()
    for picture in pictures:
        (folder / picture.name).write_bytes(picture.data)
    predictor = Predictor.from_dir(tutorial_run)
    results = predict_files(predictor, [folder])
    assert len(results) == count
    errors = [result for result in results if "error" in result]
    by_file = {result["file"]: result.get("digit") for result in results}
    labels = np.array([picture.digit for picture in pictures])
    correct = np.array(
        [by_file[str(folder / picture.name)] == picture.digit for picture in pictures]
    )
    naive = predictor.probabilities(np.stack([naive_resize(picture.data) for picture in pictures]))
    naive_correct = naive.argmax(axis=1) == labels
    from_mnist = np.array([picture.mnist_index is not None for picture in pictures])
    sources = np.stack(
        [
            rotated_source(mnist.test.images[picture.mnist_index], picture.angle)
            for picture in pictures
            if picture.mnist_index is not None
        ]
    )
    source_correct = predictor.probabilities(sources).argmax(axis=1) == labels[from_mnist]
    figures = {
        "images": count,
        "seed": seed,
        "accuracy": float(correct.mean()),
        "naive_resize_accuracy": float(naive_correct.mean()),
        "accuracy_font_digits": float(correct[~from_mnist].mean()),
        "accuracy_mnist_digits": float(correct[from_mnist].mean()),
        "rotated_mnist_sources": float(source_correct.mean()),
        "naive_font_digits": float(naive_correct[~from_mnist].mean()),
        "naive_mnist_digits": float(naive_correct[from_mnist].mean()),
        "errors": len(errors),
    }
    (tmp_path / "realistic_accuracy.json").write_text(json.dumps(figures, indent=2))
    with capsys.disabled():
        print(f"\nrealistic images ({tmp_path / 'realistic_accuracy.json'}): {figures}")
    assert not errors, errors[:3]
    rendering_loss = figures["rotated_mnist_sources"] - figures["accuracy_mnist_digits"]
    assert rendering_loss <= RENDERING_LOSS_MAX, figures
    assert figures["accuracy"] - figures["naive_resize_accuracy"] >= NAIVE_MARGIN_MIN, figures


def test_a_run_on_non_digit_data_resizes_plainly_and_names_classes(tiny_run, tmp_path, capsys):
    """Digit preprocessing (crop, thicken, centre) is for digits: other data is only resized."""
    run = shutil.copytree(tiny_run, tmp_path / "fashion-run")
    document = json.loads((run / "config.json").read_text())
    names = ["T-shirt/top", *(f"class {index}" for index in range(1, 10))]
    document["dataset"] = {"name": "fashion-mnist", "class_names": names, "identified_by": "x"}
    (run / "config.json").write_text(json.dumps(document))
    picture = np.zeros((56, 56), dtype=np.uint8)
    picture[::2] = 255  # stripes a digit cropper would crop and centre; a resize averages them
    image = tmp_path / "stripes.png"
    Image.fromarray(picture).save(image)
    predictor = Predictor.from_dir(run)
    (result,) = predict_files(predictor, [image], save_preprocessed=tmp_path / "seen")
    seen = np.asarray(Image.open(result["preprocessed"])) / 255
    np.testing.assert_allclose(seen, 0.5, atol=1 / 255)  # each 2x2 box: one white row of two
    assert main(["predict", "--run", str(run), str(image)]) == 0
    captured = capsys.readouterr()
    assert "only resized to 28x28" in captured.err
    index = result["digit"]
    assert re.search(rf"stripes.png: {index} {re.escape(names[index])} \(", captured.out)
