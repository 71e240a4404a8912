"""The synchronous client."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

import grpc

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

__all__ = ["Lethe"]


class Lethe:
    """Synchronous client for the Lethe erasure service.

    Args:
        url: ``http://host:port`` (plaintext), ``https://host:port`` (TLS) or
            ``host:port``; default ``$LETHE_URL`` or ``http://127.0.0.1:50051``.
        api_key: an ``sk_``, ``pk_`` or ``ak_`` key; default ``$LETHE_API_KEY``.
        timeout: seconds allowed for each rpc attempt (override per call with ``timeout=``).
        tls: force TLS on or off (default: from the URL scheme).
        root_certificates: PEM bytes, PEM text or a file path of the CA(s) to trust
            instead of the system's (implies TLS for ``host:port`` URLs).
        server_name: TLS name to expect when it differs from the URL's host.
        retries: how often a call that fails with ``UNAVAILABLE`` is retried, with
            exponential backoff (an int, or a :class:`lethe.RetryPolicy`; 0 disables).

    Use it as a context manager, or call :meth:`close`::

        with Lethe("http://127.0.0.1:50051", api_key=os.environ["LETHE_SK"]) as lethe:
            job = lethe.erase("ann", requested_by="dpo@acme.example", reason="Art. 17")
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
            self._channel = grpc.secure_channel(target.address, target.credentials, options=target.options)
        else:
            self._channel = grpc.insecure_channel(target.address, options=target.options)
        self._stub = lethe_pb2_grpc.LetheStub(self._channel)
        self._health = self._channel.unary_unary(
            calls.HEALTH_METHOD, request_serializer=None, response_deserializer=None
        )

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Closes the channel. The client cannot be used afterwards."""
        self._channel.close()

    def __enter__(self) -> "Lethe":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lethe({self.address!r})"

    def _timeout(self, timeout: Optional[float]) -> Optional[float]:
        return self.timeout if timeout is None else timeout

    def _call(self, call: calls.Call[T], timeout: Optional[float]) -> T:
        method = getattr(self._stub, call.method)
        attempt = 0
        while True:
            try:
                response = method(call.request, timeout=self._timeout(timeout), metadata=self._metadata)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, Unavailable) and call.retry and attempt < self._retry.max_retries:
                    time.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise with_tls_hint(err, self._tls_hint) from e
            return call.convert(response)

    # ---------------------------------------------------------------- the service

    def health(self, *, timeout: Optional[float] = None) -> bool:
        """Whether the service answers the standard gRPC health check as SERVING.

        Not retried: a service that is down gives ``False``."""
        try:
            response = self._health(b"", timeout=self._timeout(timeout))
        except grpc.RpcError:
            return False
        return calls.health_serving(response)

    def create_collection(
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
        """Registers a collection and creates it in the backend (secret key).

        ``dimension`` must match the embedding model for :meth:`ingest` (384 for the
        default model). Registering the same name with the same settings again is a
        no-op; with other settings it raises :class:`lethe.AlreadyExists`."""
        c = calls.create_collection(name, backend, dimension, distance, store_text, retention_days, screening)
        return self._call(c, timeout)

    def list_collections(self, *, timeout: Optional[float] = None) -> list[Collection]:
        """The tenant's collections."""
        return self._call(calls.list_collections(), timeout)

    def put_subject(
        self, subject_id: str, *, identifiers: Iterable[IdentifierLike] = (), timeout: Optional[float] = None
    ) -> Subject:
        """Creates or updates a subject; identifiers are added, never removed.

        Raises :class:`lethe.SubjectSuppressed` when the subject, or a person its
        identifiers name, is being or has been erased."""
        return self._call(calls.put_subject(subject_id, identifiers), timeout)

    def set_legal_hold(
        self, subject_id: str, *, hold: bool = True, reason: str = "", timeout: Optional[float] = None
    ) -> Subject:
        """Places (``hold=True``, ``reason`` required) or lifts a legal hold."""
        return self._call(calls.set_legal_hold(subject_id, hold, reason), timeout)

    def ingest(
        self,
        collection: str,
        chunks: Iterable[Union[Chunk, Mapping[str, Any]]],
        *,
        subjects: Optional[Mapping[str, Iterable[IdentifierLike]]] = None,
        timeout: Optional[float] = None,
    ) -> WriteResult:
        """Embeds and writes text chunks (at most 1,000 per call) with their subject tags.

        ``chunks`` are :class:`lethe.Chunk` objects or dicts of the same fields;
        ``subjects`` maps subject ids to identifiers, e.g. ``{"ann": ["ann@acme.example"]}``.
        Chunks tagged with an erased subject are not written (``result.suppressed``)."""
        return self._call(calls.ingest(collection, chunks, subjects), timeout)

    def track(
        self,
        collection: str,
        points: Iterable[Union[TrackedPoint, Mapping[str, Any]]],
        *,
        subjects: Optional[Mapping[str, Iterable[IdentifierLike]]] = None,
        verify_points: bool = False,
        timeout: Optional[float] = None,
    ) -> WriteResult:
        """Records lineage for vectors the pipeline wrote (or writes ``vector`` if given).

        With ``verify_points`` every point must exist in the backend
        (:class:`lethe.PointNotFound` otherwise, and nothing is recorded)."""
        return self._call(calls.track(collection, points, subjects, verify_points), timeout)

    def delete_points(
        self,
        collection: str,
        *,
        point_ids: Iterable[Union[str, int]] = (),
        source_ids: Iterable[str] = (),
        timeout: Optional[float] = None,
    ) -> DeleteResult:
        """Removes points the pipeline no longer wants, with their lineage (secret or
        publishable key): by point id, or every chunk of the given sources; together
        1 to 1,000 per call.

        A collection Lethe created: Lethe deletes the points from the backend and
        forgets their lineage. An attached collection: Lethe never alters the store,
        so delete the points with the framework first; Lethe then forgets the lineage
        of those no longer there (still there: ``kept``). Points whose lineage tags a
        subject on legal hold stay (``held``). Not an erasure: nothing is logged."""
        return self._call(calls.delete_points(collection, point_ids, source_ids), timeout)

    def erase(
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
        """Erases a subject from every collection of the tenant (secret key).

        Args:
            subject: the caller's id of the person.
            requested_by: who asked (operator, ticket); recorded in the log.
            reason: why (e.g. ``"GDPR Art. 17 request 2026-123"``).
            identifiers: identifiers for residual search, added to those on record.
            residual_policy: ``"report"`` (default), ``"delete"`` or ``"redact"``.
            idempotency_key: replaying the same request with the same key returns the
                same job. When omitted the client makes one, so that its own retries
                never start a second job.
            deadline_days: deadline after receipt (server default 30).
            guarantee_physical: ask for physical erasure (pgvector VACUUM FULL, Qdrant rebuild).
            wait: follow the job (WatchErasure) until it ends and return it with its
                final counts; ``False`` returns the queued job at once.
            progress: ``True`` for a progress bar (tqdm if installed, else lines on
                stderr), or a callable that receives every :class:`lethe.ErasureEvent`.
            timeout: per-rpc timeout; ``wait_timeout`` bounds the wait (default none).

        Raises:
            LegalHold: the subject is held; the refusal is logged (``e.job_id``, ``e.log_head``).
            ErasureInProgress: the subject has a running job, ``e.job_id``.
            IdempotencyKeyReused: the key came with another request before.
            RequiresSecretKey: not an ``sk_`` key.
            Any error that ends the wait (``DeadlineExceeded`` for ``wait_timeout``,
            ``Unavailable`` after the retries) carries the started job's id in
            ``e.metadata["job_id"]``: follow it with :meth:`wait_for_erasure`.
        """
        key = idempotency_key if idempotency_key is not None else calls.auto_idempotency_key()
        c = calls.erase(subject, identifiers, requested_by, reason, residual_policy, key, deadline_days, guarantee_physical)
        job = self._call(c, timeout)
        if not wait or job.done:
            return job
        try:
            return self.wait_for_erasure(job.job_id, progress=progress, timeout=wait_timeout)
        except LetheError as e:
            # The job was started: whatever ended the wait, say which one to follow.
            e.metadata.setdefault("job_id", job.job_id)
            raise

    def get_erasure(self, job_id: str, *, timeout: Optional[float] = None) -> ErasureJob:
        """An erasure job: status, stage, counts, residuals, deadline."""
        return self._call(calls.get_erasure(job_id), timeout)

    def watch_erasure(self, job_id: str, *, timeout: Optional[float] = None) -> Iterator[ErasureEvent]:
        """Yields the job's stage events from the first until the job ends.

        A dropped stream (``UNAVAILABLE``) is reopened with backoff and events already
        seen are skipped. ``timeout`` bounds the whole watch (default: none)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_seq = 0
        attempt = 0
        request = calls.watch_erasure_request(job_id)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            stream = self._stub.WatchErasure(request, timeout=remaining, metadata=self._metadata)
            try:
                for m in stream:
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
                    time.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise with_tls_hint(err, self._tls_hint) from e
            finally:
                stream.cancel()

    def wait_for_erasure(
        self, job_id: str, *, progress: ProgressLike = False, timeout: Optional[float] = None
    ) -> ErasureJob:
        """Follows a job until it ends and returns it (completed, failed or refused).

        Raises :class:`lethe.DeadlineExceeded` when ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        show = Progress(progress, job_id)
        shown = 0
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise DeadlineExceeded(f"erasure {job_id} did not end within {timeout} s")
                for ev in self.watch_erasure(job_id, timeout=remaining):
                    if ev.seq > shown:
                        shown = ev.seq
                        show(ev)
                job = self.get_erasure(job_id)
                if job.done:
                    return job
        finally:
            show.close()

    def list_erasures(
        self,
        *,
        status: Union[JobStatus, str, None] = None,
        overdue_only: bool = False,
        limit: int = 100,
        timeout: Optional[float] = None,
    ) -> list[ErasureJob]:
        """Erasure jobs, newest first (``limit`` 1–500), optionally by status or overdue only."""
        return self._call(calls.list_erasures(overdue_only, status, limit), timeout)

    def iter_erasures(
        self,
        *,
        status: Union[JobStatus, str, None] = None,
        overdue_only: bool = False,
        timeout: Optional[float] = None,
    ) -> Iterator[ErasureJob]:
        """Iterates erasure jobs, newest first.

        ListErasures has no cursor yet, so this yields the newest 500 (the server's
        maximum page); filter by ``status``/``overdue_only`` to reach older ones."""
        yield from self.list_erasures(status=status, overdue_only=overdue_only, limit=500, timeout=timeout)

    def count_subject(self, subject_id: str, *, timeout: Optional[float] = None) -> SubjectCounts:
        """Live, exact counts of a subject's vectors per collection, from the backends."""
        return self._call(calls.count_subject(subject_id), timeout)

    def list_deletion_log(
        self, *, after_seq: int = 0, limit: int = 100, timeout: Optional[float] = None
    ) -> DeletionLogPage:
        """One page of the deletion log (entries with ``seq > after_seq``, oldest first,
        ``limit`` 1–1000) and the log's current signed head."""
        return self._call(calls.list_deletion_log(after_seq, limit), timeout)

    def iter_deletion_log(
        self, *, after_seq: int = 0, page_size: int = 1000, timeout: Optional[float] = None
    ) -> Iterator[LogEntry]:
        """Iterates every deletion log entry after ``after_seq``, paging by ``after_seq``."""
        while True:
            page = self.list_deletion_log(after_seq=after_seq, limit=page_size, timeout=timeout)
            yield from page.entries
            if len(page.entries) < page_size:
                return
            after_seq = page.entries[-1].seq

    def verify_deletion_log(
        self,
        *,
        pin: Optional[SignedLogHead] = None,
        pinned_size: Optional[int] = None,
        pinned_head_hash: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> LogVerification:
        """Recomputes the hash chain on the server. With ``pin`` (a head you kept, e.g.
        ``LegalHold.log_head`` or a page's ``head``), the log must still reach it."""
        return self._call(calls.verify_deletion_log(pin, pinned_size, pinned_head_hash), timeout)

    def verify_log_offline(
        self,
        public_key: PinsLike,
        *,
        certificates: CertificatesLike = (),
        pin: Optional[SignedLogHead] = None,
        tenant_id: Optional[str] = None,
        page_size: int = 1000,
        timeout: Optional[float] = None,
    ) -> VerifiedLog:
        """Fetches the deletion log and checks its hash chain here, against the pinned
        ``public_key`` only (:func:`lethe.verify_log`), instead of trusting the server's
        ``VerifyDeletionLog``.

        The head is the one the first page returns (the server reads it after that
        page's entries, so every entry it signs exists); pages are read up to its size,
        and entries appended after it are outside what it signs (a later call checks
        them). ``certificates``, ``pin`` and ``tenant_id`` are :func:`lethe.verify_log`'s.

        Raises:
            lethe.InvalidLog: the head, the chain, the pin or a certificate does not verify.
        """
        _check_page_size(page_size)
        page = self.list_deletion_log(limit=page_size, timeout=timeout)
        # The head is read after this page's entries: every entry it signs exists.
        chain = _LogChain(page.head, public_key, certificates=certificates, pin=pin, tenant_id=tenant_id)
        while not chain.feed(page.entries, page_size):
            page = self.list_deletion_log(after_seq=chain.checked, limit=page_size, timeout=timeout)
        return chain.end()

    def get_certificate(self, job_id: str, *, timeout: Optional[float] = None) -> Certificate:
        """The signed certificate of a completed erasure (check it with
        :func:`lethe.verify_certificate`)."""
        return self._call(calls.get_certificate(job_id), timeout)

    def search_residuals(
        self, identifiers: Sequence[IdentifierLike], *, limit: int = 100, timeout: Optional[float] = None
    ) -> list[ResidualCandidate]:
        """Chunks in any collection that still refer to the identifiers (lexical and semantic)."""
        return self._call(calls.search_residuals(identifiers, limit), timeout)

    def attach(
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
        """Registers a store that Lethe did not create and starts its adoption (secret key).

        Args:
            name: Lethe's name for the collection.
            target: the LangChain collection name (``langchain-pgvector``), the table
                (``[schema.]name``) or the Qdrant collection.
            preset: ``langchain-pgvector``, ``langchain-pgvector-store``,
                ``llamaindex-pgvector``, ``langchain-qdrant`` or ``llamaindex-qdrant``;
                empty: ``mapping`` says it all.
            tag_key: with a preset, the metadata key holding the person's id
                (``user_id`` or ``metadata.user_id``).
            mapping: an :class:`lethe.AttachMapping` (or dict); with a preset, its
                fields replace the preset's.
            backend: default from the preset.
            create_indexes: create the index the tag filter needs when missing.
            wait: follow the adoption job until its scan ends and return it in ``job``.

        Attaching the same store with the same mapping again returns
        ``already_attached=True``. A mapping the store does not match raises
        :class:`lethe.InvalidArgument` naming the field, and registers nothing."""
        c = calls.attach(
            name, backend, preset, target, tag_key, mapping, create_indexes, distance, embedding_model, screening
        )
        result = self._call(c, timeout)
        if not wait or (result.job is not None and result.job.done):
            return result
        return dataclasses.replace(result, job=self.wait_for_attach(name, timeout=wait_timeout))

    def get_attach(self, collection: str, *, timeout: Optional[float] = None) -> AttachJob:
        """The adoption job of an attached collection (secret or auditor key)."""
        return self._call(calls.get_attach(collection), timeout)

    def watch_attach(self, collection: str, *, timeout: Optional[float] = None) -> Iterator[AttachJob]:
        """Yields the adoption job about twice a second until its scan ends."""
        request = calls.get_attach(collection).request
        stream = self._stub.WatchAttach(request, timeout=timeout, metadata=self._metadata)
        try:
            for m in stream:
                yield cv.attach_job(m)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    def wait_for_attach(self, collection: str, *, timeout: Optional[float] = None) -> AttachJob:
        """Follows the adoption job until its scan ends (completed or failed) and returns it.

        Raises :class:`lethe.DeadlineExceeded` when ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(f"adoption of {collection} did not end within {timeout} s")
            try:
                for job in self.watch_attach(collection, timeout=remaining):
                    if job.done:
                        break
            except DeadlineExceeded:
                pass
            job = self.get_attach(collection)
            if job.done:
                return job

    def reindex(
        self,
        collection: str,
        *,
        mode: Union[ReindexMode, str, None] = None,
        wait: bool = False,
        timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
    ) -> ReindexJob:
        """Rebuilds a collection from lineage as a new generation (secret key).

        ``mode`` is ``"copy"`` (default) or ``"reembed"``; with ``wait`` the job is
        followed until it ends."""
        job = self._call(calls.reindex(collection, mode), timeout)
        if not wait or job.done:
            return job
        for job in self.watch_reindex(job.job_id, timeout=wait_timeout):
            if job.done:
                break
        return self.get_reindex(job.job_id)

    def get_reindex(self, job_id: str, *, timeout: Optional[float] = None) -> ReindexJob:
        return self._call(calls.get_reindex(job_id), timeout)

    def export_subject(self, subject_id: str, *, timeout: Optional[float] = None) -> Iterator[ExportRecord]:
        """Access export (GDPR Art. 15): everything Lethe and the backends hold about a
        subject, as records in order (``subject``, ``collections``, ``chunks``,
        ``sources``, ``jobs``, ``log``, then the ``manifest`` with each part's record count
        and SHA-256). Secret key: every part; auditor key: counts, jobs, log and the
        manifest only. Each export is logged (kind ``export``), also one read halfway."""
        request = calls.export_subject(subject_id).request
        stream = self._stub.ExportSubject(request, timeout=timeout, metadata=self._metadata)
        try:
            for m in stream:
                yield cv.export_record(m)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    def watch_reindex(self, job_id: str, *, timeout: Optional[float] = None) -> Iterator[ReindexJob]:
        """Yields the re-index job about twice a second until it ends."""
        request = calls.get_reindex(job_id).request
        stream = self._stub.WatchReindex(request, timeout=timeout, metadata=self._metadata)
        try:
            for m in stream:
                yield cv.reindex_job(m)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    def list_reindexes(self, *, limit: int = 100, timeout: Optional[float] = None) -> list[ReindexJob]:
        """Re-index jobs, newest first."""
        return self._call(calls.list_reindexes(limit), timeout)

    # ------------------------------------------------------------- restore guard

    def reconcile(
        self,
        *,
        requested_by: str = "",
        wait: bool = True,
        poll: float = 0.5,
        timeout: Optional[float] = None,
        wait_timeout: Optional[float] = None,
    ) -> ReconcileRun:
        """Erases again what a restore brought back (secret key): every point of an
        erased subject in every collection, by tag, by lineage and by the erasure
        ledger, deleted with counts from the backend and logged per collection.

        Returns the run (a run already queued or running is returned instead of a
        new one, ``already_running``); with ``wait`` it is polled until it ends."""
        run = self._call(calls.reconcile(requested_by), timeout)
        if not wait or run.done:
            return run
        return self.wait_for_reconcile(run.run_id, poll=poll, timeout=wait_timeout)

    def get_reconcile(self, run_id: str, *, timeout: Optional[float] = None) -> ReconcileRun:
        """A reconcile run with its per-collection counts (secret or auditor key)."""
        return self._call(calls.get_reconcile(run_id), timeout)

    def wait_for_reconcile(self, run_id: str, *, poll: float = 0.5, timeout: Optional[float] = None) -> ReconcileRun:
        """Polls a reconcile run until it ends (completed or failed) and returns it.

        Raises :class:`lethe.DeadlineExceeded` when ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get_reconcile(run_id)
            if run.done:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineExceeded(f"reconcile {run_id} did not end within {timeout} s")
            time.sleep(poll)

    def export_ledger(self, *, timeout: Optional[float] = None) -> bytes:
        """The tenant's erasure ledger (secret key): keyed hashes of erased subjects and
        of the points their erasures deleted, signed JSON lines. Keep it with every
        backup of Lethe's database; after restoring one, :meth:`import_ledger` it.

        A stream, as long as the ledger: the client's per-call ``timeout`` does not
        apply; ``timeout`` here bounds the whole export (default: none)."""
        stream = self._stub.ExportLedger(calls.export_ledger_request(), timeout=timeout, metadata=self._metadata)
        try:
            return b"".join(m.data for m in stream)
        except grpc.RpcError as e:
            raise with_tls_hint(from_rpc_error(e), self._tls_hint) from e
        finally:
            stream.cancel()

    def import_ledger(self, ledger: bytes, *, timeout: Optional[float] = None) -> LedgerImport:
        """Imports a ledger from :meth:`export_ledger` (secret key), checked in full before
        anything is written: :class:`lethe.InvalidArgument` for an altered, truncated or
        foreign file; a :class:`lethe.LetheError` with ``reason``
        ``ledger_signed_by_another_key``, ``ledger_of_another_tenant`` or
        ``ledger_of_another_tenant_key`` otherwise. Idempotent. Then run :meth:`reconcile`.

        A stream, as long as the ledger: the client's per-call ``timeout`` does not
        apply; ``timeout`` here bounds each attempt of the whole import (default: none)."""
        attempt = 0
        while True:
            try:
                chunks = iter(calls.ledger_chunks(ledger))
                response = self._stub.ImportLedger(chunks, timeout=timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
                if isinstance(err, Unavailable) and attempt < self._retry.max_retries:
                    time.sleep(self._retry.backoff(attempt))
                    attempt += 1
                    continue
                raise with_tls_hint(err, self._tls_hint) from e
            return cv.ledger_import(response)

    # ------------------------------------------------------------------ retention

    def set_retention(
        self, collection: str, *, days: int, source_kind: str = "", clear: bool = False, timeout: Optional[float] = None
    ) -> CollectionRetention:
        """Sets a collection's retention rule (secret key): sources recorded more than
        ``days`` ago are erased as retention jobs (0: off). With ``source_kind`` the rule is
        for that kind's sources and overrides the collection's (0 keeps them for ever;
        ``clear=True`` removes it)."""
        return self._call(calls.set_retention(collection, days, source_kind, clear), timeout)

    def list_retention(self, *, timeout: Optional[float] = None) -> RetentionList:
        """Every collection's retention rules and next sweep (secret or auditor key): a
        list, whose ``scheduler_enabled`` and ``interval_secs`` say whether and how often
        the server that answered sweeps on its own."""
        return self._call(calls.list_retention(), timeout)

    def preview_retention(self, collection: str = "", *, timeout: Optional[float] = None) -> list[RetentionSweep]:
        """What a sweep would erase now, per collection: counts only (secret or auditor key)."""
        return self._call(calls.preview_retention(collection), timeout)

    def sweep_retention(self, collection: str = "", *, timeout: Optional[float] = None) -> list[RetentionSweep]:
        """Sweeps now (secret key): queues the sources past their rules as retention
        jobs; their ids are in ``job_ids`` (follow them with :meth:`wait_for_erasure`)."""
        return self._call(calls.sweep_retention(collection), timeout)
