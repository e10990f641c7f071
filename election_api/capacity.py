"""How many large batch requests the server works on at once: the bound that keeps its memory under the pod's limit.

The memory of a request grows with its body: the bytes, the decoded rows, the scoring buffers, the answer's structs
and its encoded bytes (an explained 1,000-row batch answers about 3.5 MB). ``BatchSlots`` lets at most
``ELECTION_API_MAX_CONCURRENT_BATCHES`` batch requests whose body is larger than ``LARGE_BATCH_BYTES`` (or of unknown
length) be read, decoded, scored and encoded at a time. A slot is taken before the body is read, so requests that
wait hold no more than their connection (the server stops reading a socket whose buffer fills); a request that
waits longer than ``ELECTION_API_BATCH_WAIT_SECONDS`` is answered 503 with ``Retry-After``. Smaller requests never
wait: they are decoded and scored on the event loop, one at a time, and each stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from litestar import Request

from election_api.errors import ApiError, FieldError

# About 175 rows of either mode (a row's JSON is 300-400 bytes): below this a batch is scored on the event loop.
LARGE_BATCH_BYTES = 64 * 1024


class BatchSlots:
    def __init__(self, size: int, wait_seconds: float, large_body_bytes: int = LARGE_BATCH_BYTES):
        self.size = size
        self.wait_seconds = wait_seconds
        self.large_body_bytes = large_body_bytes
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def is_large(self, request: Request) -> bool:
        length = request.headers.get("content-length")
        if length is None:  # a chunked body: its size is known only once it has been read
            return True
        try:
            return int(length) > self.large_body_bytes
        except ValueError:
            return True

    def _of_this_loop(self) -> asyncio.Semaphore:
        # An asyncio primitive belongs to one event loop; a test may run one app under several.
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.size), loop
        return self._semaphore

    @contextlib.asynccontextmanager
    async def slot(self, request: Request) -> AsyncIterator[None]:
        """Hold a slot for the body of the block when the request is large; a small request passes at once."""
        if not self.is_large(request):
            yield
            return
        semaphore = self._of_this_loop()
        if semaphore.locked():
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await semaphore.acquire()
            except TimeoutError:
                raise self._busy() from None
        else:
            await semaphore.acquire()  # free: returns at once
        try:
            yield
        finally:
            semaphore.release()

    def _busy(self) -> ApiError:
        return ApiError(
            503,
            "too many large batches at once; retry later",
            [
                FieldError(
                    "$.rows",
                    f"{self.size} batches larger than {self.large_body_bytes // 1024} KiB are being scored "
                    f"(ELECTION_API_MAX_CONCURRENT_BATCHES) and this one waited {self.wait_seconds:g} s for its "
                    "turn (ELECTION_API_BATCH_WAIT_SECONDS): retry, or send smaller batches",
                )
            ],
            headers={"Retry-After": "1"},
        )
