"""`Batcher` against a fake predictor: who gets which row, batch sizes, errors, cancellations.

Requests created together (one `asyncio.gather`) all reach the queue before the run loop
wakes, so the batches they form are deterministic; a fake that blocks on a `threading.Event`
holds a batch inside the model call while the test queues or cancels others.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import numpy as np
import pytest

from mnist_cnn.batching import Batcher

WAIT_SECONDS = 10  # upper bound on any wait; the tests finish in milliseconds


def image(value: float) -> np.ndarray:
    """A (28, 28) float32 image whose every pixel is `value`: its identity."""
    return np.full((28, 28), value, np.float32)


class RecordingPredictor:
    """Answers each image with a row that depends on it: (mean, 2 * mean, ..., 10 * mean)."""

    def __init__(self, gate: threading.Event | None = None, error: Exception | None = None):
        self.shapes: list[tuple[int, ...]] = []
        self.gate = gate  # each call waits for it (then it stays open)
        self.entered = threading.Event()
        self.error = error  # raised by the first call only

    def answers(self, images: np.ndarray) -> np.ndarray:
        self.shapes.append(images.shape)
        self.entered.set()
        if self.gate is not None and not self.gate.wait(WAIT_SECONDS):
            raise TimeoutError("the test never opened the gate")
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return expected_row(images.mean(axis=(1, 2)))


def expected_row(mean: np.ndarray | float) -> np.ndarray:
    return np.multiply.outer(mean, np.arange(1, 11)).astype(np.float32)


@contextlib.asynccontextmanager
async def serving(batcher: Batcher):
    """The batcher's loop running, as in serve's lifespan; cancelled on exit."""
    task = asyncio.create_task(batcher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_entered(predictor: RecordingPredictor) -> None:
    assert await asyncio.to_thread(predictor.entered.wait, WAIT_SECONDS)


def test_concurrent_requests_form_one_batch_and_each_gets_its_own_row():
    values = [0.1 * index for index in range(1, 8)]
    predictor = RecordingPredictor()

    async def scenario():
        batcher = Batcher(predictor)
        async with serving(batcher):
            return await asyncio.gather(*(batcher.answer(image(v)) for v in values))

    rows = asyncio.run(scenario())
    assert predictor.shapes == [(len(values), 28, 28)]  # one model call for all seven
    for value, row in zip(values, rows, strict=True):
        np.testing.assert_allclose(row, expected_row(value), rtol=1e-6)


def test_max_batch_is_honoured_and_order_kept():
    values = [0.1 * index for index in range(1, 6)]
    predictor = RecordingPredictor()

    async def scenario():
        batcher = Batcher(predictor, max_batch=2)
        async with serving(batcher):
            return await asyncio.gather(*(batcher.answer(image(v)) for v in values))

    rows = asyncio.run(scenario())
    assert [shape[0] for shape in predictor.shapes] == [2, 2, 1]
    for value, row in zip(values, rows, strict=True):
        np.testing.assert_allclose(row, expected_row(value), rtol=1e-6)


def test_requests_queued_during_a_model_call_go_together_next():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)

    async def scenario():
        batcher = Batcher(predictor)
        async with serving(batcher):
            first = asyncio.create_task(batcher.answer(image(0.9)))
            await wait_entered(predictor)  # the first image is inside the model now
            later = [asyncio.create_task(batcher.answer(image(v))) for v in (0.2, 0.3)]
            await asyncio.sleep(0)  # let them reach the queue
            gate.set()
            return await asyncio.gather(first, *later)

    rows = asyncio.run(scenario())
    assert [shape[0] for shape in predictor.shapes] == [1, 2]
    for value, row in zip((0.9, 0.2, 0.3), rows, strict=True):
        np.testing.assert_allclose(row, expected_row(value), rtol=1e-6)


def test_a_predictor_error_reaches_every_request_of_its_batch_and_the_loop_goes_on():
    predictor = RecordingPredictor(error=RuntimeError("model exploded"))

    async def scenario():
        batcher = Batcher(predictor)
        async with serving(batcher) as loop_task:
            failed = await asyncio.gather(
                *(batcher.answer(image(v)) for v in (0.1, 0.2, 0.3)),
                return_exceptions=True,
            )
            assert not loop_task.done()  # the error did not end the loop
            after = await asyncio.wait_for(batcher.answer(image(0.4)), WAIT_SECONDS)
            return failed, after

    failed, after = asyncio.run(scenario())
    assert [shape[0] for shape in predictor.shapes] == [3, 1]
    assert all(isinstance(result, RuntimeError) for result in failed), failed
    assert {str(result) for result in failed} == {"model exploded"}
    np.testing.assert_allclose(after, expected_row(0.4), rtol=1e-6)


def test_a_cancelled_request_does_not_break_the_others():
    gate = threading.Event()
    predictor = RecordingPredictor(gate)

    async def scenario():
        batcher = Batcher(predictor)
        async with serving(batcher) as loop_task:
            # Batch 1: [0.1, 0.2], held in the model; 0.2's client goes away meanwhile.
            in_model = [asyncio.create_task(batcher.answer(image(v))) for v in (0.1, 0.2)]
            await wait_entered(predictor)
            # Batch 2: [0.3, 0.4, 0.5], queued; 0.4's client goes away before it runs.
            queued = [asyncio.create_task(batcher.answer(image(v))) for v in (0.3, 0.4, 0.5)]
            await asyncio.sleep(0)
            in_model[1].cancel()
            queued[1].cancel()
            gate.set()
            results = await asyncio.gather(*in_model, *queued, return_exceptions=True)
            assert not loop_task.done()
            after = await asyncio.wait_for(batcher.answer(image(0.6)), WAIT_SECONDS)
            return results, after

    results, after = asyncio.run(scenario())
    assert [shape[0] for shape in predictor.shapes] == [2, 3, 1]
    for index, value in enumerate((0.1, 0.2, 0.3, 0.4, 0.5)):
        if value in (0.2, 0.4):
            assert isinstance(results[index], asyncio.CancelledError)
        else:
            np.testing.assert_allclose(results[index], expected_row(value), rtol=1e-6)
    np.testing.assert_allclose(after, expected_row(0.6), rtol=1e-6)


@pytest.mark.parametrize("max_batch", [1, 3])
def test_every_request_is_answered_under_any_max_batch(max_batch):
    values = [index / 20 for index in range(1, 11)]
    predictor = RecordingPredictor()

    async def scenario():
        batcher = Batcher(predictor, max_batch=max_batch)
        async with serving(batcher):
            return await asyncio.gather(*(batcher.answer(image(v)) for v in values))

    rows = asyncio.run(scenario())
    sizes = [shape[0] for shape in predictor.shapes]
    assert sum(sizes) == len(values) and max(sizes) <= max_batch
    for value, row in zip(values, rows, strict=True):
        np.testing.assert_allclose(row, expected_row(value), rtol=1e-6)
