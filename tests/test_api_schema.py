"""The OpenAPI schema states the real contract: a bounded schemathesis run with every check on,
against a real server, finds no request the schema allows but the server refuses (or the
reverse), no 5xx and no answer outside the documented responses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mnist_cnn.api_schema import IMAGE_MEDIA_TYPES, REQUEST_BODY
from mnist_cnn.decode import ALLOWED_FORMATS
from mnist_cnn.serve import create_app
from tests.live_server import serving

TESTS_DIR = Path(__file__).parent
# Per operation, after the coverage phase's cases: enough that every field's edge cases and
# both body media types are drawn (the run takes about 20 s), seeded so a failure replays.
MAX_EXAMPLES = 150
SEED = 20261206
RUN_SECONDS = 300


def test_multipart_parts_name_every_accepted_format():
    declared = REQUEST_BODY["content"]["multipart/form-data"]["encoding"]["image"]["contentType"]
    assert declared == IMAGE_MEDIA_TYPES
    assert {part.removeprefix("image/").upper() for part in declared.split(", ")} == set(
        ALLOWED_FORMATS
    )


def test_schemathesis_finds_no_contract_violation(tiny_run, tmp_path):
    executable = Path(sys.executable).with_name("schemathesis")
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
    }
    with serving(create_app(tiny_run)) as port:
        finished = subprocess.run(
            [
                str(executable),
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--no-color",
            ],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,  # its report files stay out of the checkout
            timeout=RUN_SECONDS,
        )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-6000:]
    assert "No issues found" in output, output[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated, output[-6000:]
    assert int(generated[1]) == int(generated[2]) >= MAX_EXAMPLES
