"""Micro-batching: the images of concurrent requests go through the model in one call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
from starlette.concurrency import run_in_threadpool

from mnist_cnn.abstain import Answer
from mnist_cnn.inference import Predictor

MAX_BATCH = 64  # images per model call when requests pile up


class Batcher:
    """Runs the images of concurrent requests through the model in one call.

    No waiting to fill a batch: whatever queued up while the previous call ran goes next.
    """

    def __init__(
        self,
        predictor: Predictor,
        max_batch: int = MAX_BATCH,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.on_batch = on_batch  # called with each model call's batch size (metrics)
        self._queue: list[tuple[np.ndarray, asyncio.Future[Answer]]] = []
        self._wake = asyncio.Event()

    async def answer(self, image: np.ndarray) -> Answer:
        """float32 (28, 28) -> its Answer (digit or abstention, calibrated probabilities)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((image, future))
        self._wake.set()
        return await future

    async def run(self) -> None:
        """Serve the queue until cancelled; the model runs in a worker thread."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                images = np.stack([image for image, _ in batch])
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                try:
                    rows = await run_in_threadpool(self.predictor.answers, images)
                except Exception as error:  # handed to each waiting request
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), row in zip(batch, rows, strict=True):
                    if not future.done():  # done: the client went away
                        future.set_result(row)
