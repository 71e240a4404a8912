"""The asyncio client (grpc.aio). Same methods and arguments as :class:`lethe.Lethe`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from typing import Any, AsyncGenerator, AsyncIterator, Iterable, Mapping, Optional, Sequence, TypeVar, Union

import grpc
import grpc.aio

from . import _calls as calls
from . import _convert as cv
from ._progress import Progress, ProgressLike
from ._transport import DEFAULT_TIMEOUT, RetriesLike, resolve, retry_policy, with_tls_hint
from .errors import DeadlineExceeded, LetheError, Unavailable, from_rpc_error
from .types import (
    CollectionRetention,
    RetentionList,
    RetentionSweep,
    LedgerImport,
    ReconcileRun,
    AttachJob,
    AttachMapping,
    AttachResult,
    Backend,
    Certificate,
    Chunk,
    Collection,
    DeleteResult,
    DeletionLogPage,
    Distance,
    ErasureEvent,
    ErasureJob,
    ExportRecord,
    IdentifierLike,
    JobStatus,
    LogEntry,
    LogVerification,
    ReindexJob,
    ReindexMode,
    ResidualCandidate,
    ResidualPolicy,
    Screening,
    SignedLogHead,
    Subject,
    SubjectCounts,
    TrackedPoint,
    VerifiedLog,
    WriteResult,
)
from .v1 import lethe_pb2_grpc
from .verify import CertificatesLike, PinsLike, _check_page_size, _LogChain

T = TypeVar("T")

__all__ = ["AsyncLethe"]


class AsyncLethe:
    """Asyncio client for the Lethe erasure service (``grpc.aio``).

    Takes the same arguments as :class:`lethe.Lethe`; every method is a coroutine, and
    the ``watch_*``/``iter_*`` methods are async iterators::

        async with AsyncLethe(url, api_key=sk) as lethe:
            job = await lethe.erase("ann", requested_by="dpo@acme.example")
            async for entry in lethe.iter_deletion_log():
                ...

    Create it inside the event loop that uses it.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        tls: Optional[bool] = None,
        root_certificates: Union[bytes, str, "os.PathLike[str]", None] = None,
        server_name: Optional[str] = None,
        retries: RetriesLike = 4,
    ) -> None:
        self._retry = retry_policy(retries)
        target = resolve(url, api_key, tls, root_certificates, server_name, self._retry)
        self.address = target.address
        self.timeout = timeout
        self._metadata = target.metadata
        self._tls_hint = target.tls_hint
        if target.credentials is not None:
            self._channel = grpc.aio.secure_channel(target.address, target.credentials, options=target.options)
        else:
            self._channel = grpc.aio.insecure_channel(target.address, options=target.options)
        self._stub = lethe_pb2_grpc.LetheStub(self._channel)
        self._health = self._channel.unary_unary(
            calls.HEALTH_METHOD, request_serializer=None, response_deserializer=None
        )

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close(grace=None)

    async def __aenter__(self) -> "AsyncLethe":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncLethe({self.address!r})"

    def _timeout(self, timeout: Optional[float]) -> Optional[float]:
        return self.timeout if timeout is None else timeout

    async def _call(self, call: calls.Call[T], timeout: Optional[float]) -> T:
        method = getattr(self._stub, call.method)
        attempt = 0
        while True:
            try:
                response = await method(call.request, timeout=self._timeout(timeout), metadata=self._metadata)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, Unavailable) and call.retry and attempt < self._retry.max_retries:
                    await asyncio.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise with_tls_hint(err, self._tls_hint) from e
            return call.convert(response)

    async def health(self, *, timeout: Optional[float] = None) -> bool:
        """See :meth:`lethe.Lethe.health`."""
        try:
            response = await self._health(b"", timeout=self._timeout(timeout))
        except grpc.RpcError:
            return False
        return calls.health_serving(response)

    async def create_collection(
        self,
        name: str,
        *,
        backend: Union[Backend, str] = Backend.PGVECTOR,
        dimension: int = 384,
        distance: Union[Distance, str, None] = None,
        store_text: Optional[bool] = None,
        retention_days: int = 0,
        screening: Union[Screening, str, None] = None,
        timeout: Optional[float] = None,
    ) -> Collection:
        """See :meth:`lethe.Lethe.create_collection`."""
        c = calls.create_collection(name, backend, dimension, distance, store_text, retention_days, screening)
        return await self._call(c, timeout)

    async def list_collections(self, *, timeout: Optional[float] = None) -> list[Collection]:
        return await self._call(calls.list_collections(), timeout)

    async def put_subject(
        self, subject_id: str, *, identifiers: Iterable[IdentifierLike] = (), timeout: Optional[float] = None
    ) -> Subject:
        """See :meth:`lethe.Lethe.put_subject`."""
        return await self._call(calls.put_subject(subject_id, identifiers), timeout)

    async def set_legal_hold(
        self, subject_id: str, *, hold: bool = True, reason: str = "", timeout: Optional[float] = None
    ) -> Subject:
        return await self._call(calls.set_legal_hold(subject_id, hold, reason), timeout)

    async def ingest(
        self,
        collection: str,
        chunks: Iterable[Union[Chunk, Mapping[str, Any]]],
        *,
        subjects: Optional[Mapping[str, Iterable[IdentifierLike]]] = None,
        timeout: Optional[float] = None,
    ) -> WriteResult:
        """See :meth:`lethe.Lethe.ingest`."""
        return await self._call(calls.ingest(collection, chunks, subjects), timeout)

    async def track(
        self,
        collection: str,
        points: Iterable[Union[TrackedPoint, Mapping[str, Any]]],
        *,
        subjects: Optional[Mapping[str, Iterable[IdentifierLike]]] = None,
        verify_points: bool = False,
        timeout: Optional[float] = None,
    ) -> WriteResult:
        """See :meth:`lethe.Lethe.track`."""
        return await self._call(calls.track(collection, points, subjects, verify_points), timeout)

    async def delete_points(
        self,
        collection: str,
        *,
        point_ids: Iterable[Union[str, int]] = (),
        source_ids: Iterable[str] = (),
        timeout: Optional[float] = None,
    ) -> DeleteResult:
        """See :meth:`lethe.Lethe.delete_points`."""
        return await self._call(calls.delete_points(collection, point_ids, source_ids), timeout)

    async def erase(
        self,
        subject: str,
        *,
        requested_by: str,
        reason: str = "",
        identifiers: Iterable[IdentifierLike] = (),
        residual_policy: Union[ResidualPolicy, str, None] = None,
        idempotency_key: Optional[str] = None,
        deadline_days: Optional[int] = None,
        guarantee_physical: bool = False,
        wait: bool = True,
        progress: ProgressLike = False,
        timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
    ) -> ErasureJob:
        """See :meth:`lethe.Lethe.erase`."""
        key = idempotency_key if idempotency_key is not None else calls.auto_idempotency_key()
        c = calls.erase(subject, identifiers, requested_by, reason, residual_policy, key, deadline_days, guarantee_physical)
        job = await self._call(c, timeout)
        if not wait or job.done:
            return job
        try:
            return await self.wait_for_erasure(job.job_id, progress=progress, timeout=wait_timeout)
        except LetheError as e:
            # The job was started: whatever ended the wait, say which one to follow.
            e.metadata.setdefault("job_id", job.job_id)
            raise

    async def get_erasure(self, job_id: str, *, timeout: Optional[float] = None) -> ErasureJob:
        return await self._call(calls.get_erasure(job_id), timeout)

    async def watch_erasure(self, job_id: str, *, timeout: Optional[float] = None) -> AsyncGenerator[ErasureEvent, None]:
        """See :meth:`lethe.Lethe.watch_erasure`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_seq = 0
        attempt = 0
        request = calls.watch_erasure_request(job_id)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            stream = self._stub.WatchErasure(request, timeout=remaining, metadata=self._metadata)
            try:
                async for m in stream:
                    ev = cv.erasure_event(m)
                    if ev.seq <= last_seq:
                        continue
                    last_seq, attempt = ev.seq, 0
                    yield ev
                    if ev.status.terminal:
                        return
                return
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, Unavailable) and attempt < self._retry.max_retries:
                    await asyncio.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise with_tls_hint(err, self._tls_hint) from e
            finally:
                stream.cancel()

    async def wait_for_erasure(
        self, job_id: str, *, progress: ProgressLike = False, timeout: Optional[float] = None
    ) -> ErasureJob:
        """See :meth:`lethe.Lethe.wait_for_erasure`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        show = Progress(progress, job_id)
        shown = 0
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise DeadlineExceeded(f"erasure {job_id} did not end within {timeout} s")
                async with contextlib.aclosing(self.watch_erasure(job_id, timeout=remaining)) as events:
                    async for ev in events:
                        if ev.seq > shown:
                            shown = ev.seq
                            show(ev)
                job = await self.get_erasure(job_id)
                if job.done:
                    return job
        finally:
            show.close()

    async def list_erasures(
        self,
        *,
        status: Union[JobStatus, str, None] = None,
        overdue_only: bool = False,
        limit: int = 100,
        timeout: Optional[float] = None,
    ) -> list[ErasureJob]:
        return await self._call(calls.list_erasures(overdue_only, status, limit), timeout)

    async def iter_erasures(
        self,
        *,
        status: Union[JobStatus, str, None] = None,
        overdue_only: bool = False,
        timeout: Optional[float] = None,
    ) -> AsyncIterator[ErasureJob]:
        """See :meth:`lethe.Lethe.iter_erasures`."""
        for job in await self.list_erasures(status=status, overdue_only=overdue_only, limit=500, timeout=timeout):
            yield job

    async def count_subject(self, subject_id: str, *, timeout: Optional[float] = None) -> SubjectCounts:
        return await self._call(calls.count_subject(subject_id), timeout)

    async def list_deletion_log(
        self, *, after_seq: int = 0, limit: int = 100, timeout: Optional[float] = None
    ) -> DeletionLogPage:
        return await self._call(calls.list_deletion_log(after_seq, limit), timeout)

    async def iter_deletion_log(
        self, *, after_seq: int = 0, page_size: int = 1000, timeout: Optional[float] = None
    ) -> AsyncIterator[LogEntry]:
        """See :meth:`lethe.Lethe.iter_deletion_log`."""
        while True:
            page = await self.list_deletion_log(after_seq=after_seq, limit=page_size, timeout=timeout)
            for entry in page.entries:
                yield entry
            if len(page.entries) < page_size:
                return
            after_seq = page.entries[-1].seq

    async def verify_deletion_log(
        self,
        *,
        pin: Optional[SignedLogHead] = None,
        pinned_size: Optional[int] = None,
        pinned_head_hash: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> LogVerification:
        return await self._call(calls.verify_deletion_log(pin, pinned_size, pinned_head_hash), timeout)

    async def verify_log_offline(
        self,
        public_key: PinsLike,
        *,
        certificates: CertificatesLike = (),
        pin: Optional[SignedLogHead] = None,
        tenant_id: Optional[str] = None,
        page_size: int = 1000,
        timeout: Optional[float] = None,
    ) -> VerifiedLog:
        """See :meth:`lethe.Lethe.verify_log_offline`."""
        _check_page_size(page_size)
        page = await self.list_deletion_log(limit=page_size, timeout=timeout)
        # The head is read after this page's entries: every entry it signs exists.
        chain = _LogChain(page.head, public_key, certificates=certificates, pin=pin, tenant_id=tenant_id)
        while not chain.feed(page.entries, page_size):
            page = await self.list_deletion_log(after_seq=chain.checked, limit=page_size, timeout=timeout)
        return chain.end()

    async def get_certificate(self, job_id: str, *, timeout: Optional[float] = None) -> Certificate:
        return await self._call(calls.get_certificate(job_id), timeout)

    async def search_residuals(
        self, identifiers: Sequence[IdentifierLike], *, limit: int = 100, timeout: Optional[float] = None
    ) -> list[ResidualCandidate]:
        return await self._call(calls.search_residuals(identifiers, limit), timeout)

    async def attach(
        self,
        name: str,
        *,
        target: str,
        preset: str = "",
        tag_key: str = "",
        mapping: Union[AttachMapping, Mapping[str, Any], None] = None,
        backend: Union[Backend, str, None] = None,
        create_indexes: bool = False,
        distance: Union[Distance, str, None] = None,
        embedding_model: str = "",
        screening: Union[Screening, str, None] = None,
        wait: bool = False,
        timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
    ) -> AttachResult:
        """See :meth:`lethe.Lethe.attach`."""
        c = calls.attach(
            name, backend, preset, target, tag_key, mapping, create_indexes, distance, embedding_model, screening
        )
        result = await self._call(c, timeout)
        if not wait or (result.job is not None and result.job.done):
            return result
        return dataclasses.replace(result, job=await self.wait_for_attach(name, timeout=wait_timeout))

    async def get_attach(self, collection: str, *, timeout: Optional[float] = None) -> AttachJob:
        return await self._call(calls.get_attach(collection), timeout)

    async def watch_attach(self, collection: str, *, timeout: Optional[float] = None) -> AsyncGenerator[AttachJob, None]:
        """See :meth:`lethe.Lethe.watch_attach`."""
        request = calls.get_attach(collection).request
        stream = self._stub.WatchAttach(request, timeout=timeout, metadata=self._metadata)
        try:
            async for m in stream:
                yield cv.attach_job(m)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    async def wait_for_attach(self, collection: str, *, timeout: Optional[float] = None) -> AttachJob:
        """See :meth:`lethe.Lethe.wait_for_attach`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(f"adoption of {collection} did not end within {timeout} s")
            try:
                # Closed on leaving (a break leaves an async generator open until it is
                # garbage collected, and its stream with it).
                async with contextlib.aclosing(self.watch_attach(collection, timeout=remaining)) as jobs:
                    async for job in jobs:
                        if job.done:
                            break
            except DeadlineExceeded:
                pass
            job = await self.get_attach(collection)
            if job.done:
                return job

    async def reindex(
        self,
        collection: str,
        *,
        mode: Union[ReindexMode, str, None] = None,
        wait: bool = False,
        timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
    ) -> ReindexJob:
        """See :meth:`lethe.Lethe.reindex`."""
        job = await self._call(calls.reindex(collection, mode), timeout)
        if not wait or job.done:
            return job
        async with contextlib.aclosing(self.watch_reindex(job.job_id, timeout=wait_timeout)) as jobs:
            async for job in jobs:
                if job.done:
                    break
        return await self.get_reindex(job.job_id)

    async def get_reindex(self, job_id: str, *, timeout: Optional[float] = None) -> ReindexJob:
        return await self._call(calls.get_reindex(job_id), timeout)

    async def export_subject(self, subject_id: str, *, timeout: Optional[float] = None) -> AsyncIterator[ExportRecord]:
        """See :meth:`lethe.Lethe.export_subject`."""
        request = calls.export_subject(subject_id).request
        stream = self._stub.ExportSubject(request, timeout=timeout, metadata=self._metadata)
        try:
            async for m in stream:
                yield cv.export_record(m)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    async def watch_reindex(self, job_id: str, *, timeout: Optional[float] = None) -> AsyncGenerator[ReindexJob, None]:
        request = calls.get_reindex(job_id).request
        stream = self._stub.WatchReindex(request, timeout=timeout, metadata=self._metadata)
        try:
            async for m in stream:
                yield cv.reindex_job(m)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    async def list_reindexes(self, *, limit: int = 100, timeout: Optional[float] = None) -> list[ReindexJob]:
        return await self._call(calls.list_reindexes(limit), timeout)

    async def reconcile(
        self,
        *,
        requested_by: str = "",
        wait: bool = True,
        poll: float = 0.5,
        timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
    ) -> ReconcileRun:
        """See :meth:`lethe.Lethe.reconcile`."""
        run = await self._call(calls.reconcile(requested_by), timeout)
        if not wait or run.done:
            return run
        return await self.wait_for_reconcile(run.run_id, poll=poll, timeout=wait_timeout)

    async def get_reconcile(self, run_id: str, *, timeout: Optional[float] = None) -> ReconcileRun:
        """See :meth:`lethe.Lethe.get_reconcile`."""
        return await self._call(calls.get_reconcile(run_id), timeout)

    async def wait_for_reconcile(
        self, run_id: str, *, poll: float = 0.5, timeout: Optional[float] = None
    ) -> ReconcileRun:
        """See :meth:`lethe.Lethe.wait_for_reconcile`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = await self.get_reconcile(run_id)
            if run.done:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(f"reconcile {run_id} did not end within {timeout} s")
            await asyncio.sleep(poll)

    async def export_ledger(self, *, timeout: Optional[float] = None) -> bytes:
        """See :meth:`lethe.Lethe.export_ledger`."""
        stream = self._stub.ExportLedger(calls.export_ledger_request(), timeout=timeout, metadata=self._metadata)
        try:
            return b"".join([m.data async for m in stream])
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    async def import_ledger(self, ledger: bytes, *, timeout: Optional[float] = None) -> LedgerImport:
        """See :meth:`lethe.Lethe.import_ledger`."""
        attempt = 0
        while True:
            try:
                chunks = iter(calls.ledger_chunks(ledger))
                response = await self._stub.ImportLedger(chunks, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, Unavailable) and attempt < self._retry.max_retries:
                    await asyncio.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise with_tls_hint(err, self._tls_hint) from e
            return cv.ledger_import(response)

    # ------------------------------------------------------------------ retention

    async def set_retention(
        self, collection: str, *, days: int, source_kind: str = "", clear: bool = False, timeout: Optional[float] = None
    ) -> CollectionRetention:
        """See :meth:`lethe.Lethe.set_retention`."""
        return await self._call(calls.set_retention(collection, days, source_kind, clear), timeout)

    async def list_retention(self, *, timeout: Optional[float] = None) -> RetentionList:
        """See :meth:`lethe.Lethe.list_retention`."""
        return await self._call(calls.list_retention(), timeout)

    async def preview_retention(self, collection: str = "", *, timeout: Optional[float] = None) -> list[RetentionSweep]:
        """See :meth:`lethe.Lethe.preview_retention`."""
        return await self._call(calls.preview_retention(collection), timeout)

    async def sweep_retention(self, collection: str = "", *, timeout: Optional[float] = None) -> list[RetentionSweep]:
        """See :meth:`lethe.Lethe.sweep_retention`."""
        return await self._call(calls.sweep_retention(collection), timeout)
