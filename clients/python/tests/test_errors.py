"""Every error class, each provoked from a real server response."""

from __future__ import annotations

import uuid

import grpc
import pytest
from conftest import Person, Server, ingest_about

import lethe
from lethe.errors import from_status


def test_invalid_api_key(server: Server) -> None:
    with lethe.Lethe(server.url, api_key="sk_" + "0" * 40) as c:
        with pytest.raises(lethe.InvalidApiKey) as e:
            c.list_collections()
    assert e.value.reason == "invalid_api_key"
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert e.value.domain == "lethe.dev"
    assert isinstance(e.value, lethe.LetheError)


def test_an_api_key_read_with_its_newline_works_and_a_broken_one_is_a_value_error(server: Server) -> None:
    """A key read from a file (``open(f).read()``) keeps its newline: stripped. A key with
    characters no key has is refused by the client, not sent (gRPC would answer INTERNAL),
    and the error does not show it."""
    with lethe.Lethe(server.url, api_key=f"  {server.ak}\n") as c:
        assert isinstance(c.list_collections(), list)
    for bad in ["sk_abc\x00def", "sk_ab\u00e9", "sk_a b", "\n"]:
        with pytest.raises(ValueError) as e:
            lethe.Lethe(server.url, api_key=bad)
        assert "abc" not in str(e.value) and "sk_" not in str(e.value)


def test_publishable_key_cannot_erase(publishable: lethe.Lethe, person: Person) -> None:
    with pytest.raises(lethe.RequiresSecretKey) as e:
        publishable.erase(person.id, requested_by="dpo@example.org")
    assert (e.value.reason, e.value.code) == ("requires_secret_key", grpc.StatusCode.PERMISSION_DENIED)
    assert isinstance(e.value, lethe.PermissionDenied)


def test_publishable_key_cannot_read_jobs(publishable: lethe.Lethe) -> None:
    with pytest.raises(lethe.RequiresAuditorOrSecretKey) as e:
        publishable.list_erasures()
    assert e.value.reason == "requires_auditor_or_secret_key"
    assert isinstance(e.value, lethe.PermissionDenied)


def test_auditor_key_cannot_create_collections(auditor: lethe.Lethe) -> None:
    with pytest.raises(lethe.RequiresSecretKey):
        auditor.create_collection("never", dimension=384)


def test_unknown_job_is_not_found(auditor: lethe.Lethe) -> None:
    missing = str(uuid.uuid4())
    for call in (auditor.get_erasure, auditor.get_certificate, auditor.get_reindex):
        with pytest.raises(lethe.NotFound) as e:
            call(missing)
        assert (e.value.reason, e.value.code) == ("not_found", grpc.StatusCode.NOT_FOUND)
    with pytest.raises(lethe.NotFound):
        list(auditor.watch_erasure(missing))


def test_bad_argument_names_the_field(client: lethe.Lethe, person: Person) -> None:
    with pytest.raises(lethe.InvalidArgument) as e:
        client.erase(person.id, requested_by="")
    assert e.value.field == "requested_by"
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.description
    with pytest.raises(lethe.InvalidArgument) as e:
        client.create_collection("no spaces allowed", dimension=384)
    assert e.value.field == "name"
    with pytest.raises(lethe.InvalidArgument) as e:
        client.put_subject(person.id, identifiers=[lethe.Identifier("not-an-address", kind="email")])
    assert "identifiers" in e.value.field
    with pytest.raises(lethe.InvalidArgument) as e:
        client.get_erasure("not-a-uuid")
    assert e.value.field == "job_id"


def test_legal_hold_refuses_with_a_signed_head(client: lethe.Lethe, auditor: lethe.Lethe, person: Person, server: Server) -> None:
    client.set_legal_hold(person.id, hold=True, reason="litigation 2026-4")
    with pytest.raises(lethe.LegalHold) as e:
        client.erase(person.id, requested_by="dpo@example.org", reason="Art. 17")
    err = e.value
    assert (err.reason, err.code) == ("legal_hold", grpc.StatusCode.FAILED_PRECONDITION)
    assert uuid.UUID(err.job_id)
    assert err.metadata["job_id"] == err.job_id
    head = err.log_head
    assert head is not None and head.size >= 1 and len(head.head_hash) == 64
    assert head.key_id == server.key_id and head.signed_at is not None
    statement = lethe.verify_log_head(head, server.public_key)
    assert statement["size"] == head.size
    # the refusal is a job and a log entry, covered by that head
    assert auditor.get_erasure(err.job_id).status == lethe.JobStatus.REFUSED
    refusal = [x for x in auditor.iter_deletion_log() if x.job_id == err.job_id]
    assert len(refusal) == 1 and refusal[0].kind == "refusal" and refusal[0].seq <= head.size
    assert auditor.verify_deletion_log(pin=head).valid
    client.set_legal_hold(person.id, hold=False)
    assert client.erase(person.id, requested_by="dpo@example.org").status == lethe.JobStatus.COMPLETED


def test_erased_subject_is_suppressed(client: lethe.Lethe, collection: str, person: Person) -> None:
    ingest_about(client, collection, person, 1)
    client.erase(person.id, requested_by="dpo@example.org", identifiers=[person.email])
    with pytest.raises(lethe.SubjectSuppressed) as e:
        client.put_subject(person.id, identifiers=["someone.else.entirely@example.org"])
    assert (e.value.reason, e.value.code) == ("subject_suppressed", grpc.StatusCode.FAILED_PRECONDITION)
    # another id naming the same person is suppressed too
    with pytest.raises(lethe.SubjectSuppressed):
        client.put_subject(f"{person.id}-alias", identifiers=[person.email])
    # and writes tagged with the erased subject are not written
    r = client.ingest(collection, [lethe.Chunk(source_id=f"{person.id}-late", text="late mail", tags=[person.id])])
    assert (r.accepted, r.suppressed) == (0, 1)


def test_second_erase_while_running(client: lethe.Lethe, collection: str, person: Person) -> None:
    ingest_about(client, collection, person, 2)
    first = client.erase(person.id, requested_by="dpo@example.org", wait=False)
    with pytest.raises(lethe.ErasureInProgress) as e:
        client.erase(person.id, requested_by="dpo@example.org", reason="again", wait=False)
    assert (e.value.reason, e.value.code) == ("erasure_in_progress", grpc.StatusCode.ALREADY_EXISTS)
    assert e.value.job_id == first.job_id
    done = client.wait_for_erasure(e.value.job_id, timeout=60)
    assert done.status == lethe.JobStatus.COMPLETED and done.deleted == 2


def test_idempotency_key_replay_and_reuse(client: lethe.Lethe, person: Person) -> None:
    key = f"req-{uuid.uuid4()}"
    first = client.erase(person.id, requested_by="dpo@example.org", reason="ticket 1", idempotency_key=key, wait=False)
    replay = client.erase(person.id, requested_by="dpo@example.org", reason="ticket 1", idempotency_key=key, wait=False)
    assert replay.job_id == first.job_id
    with pytest.raises(lethe.IdempotencyKeyReused) as e:
        client.erase(person.id, requested_by="dpo@example.org", reason="ticket 2", idempotency_key=key)
    assert (e.value.reason, e.value.code) == ("idempotency_key_reused", grpc.StatusCode.FAILED_PRECONDITION)
    assert client.wait_for_erasure(first.job_id).status == lethe.JobStatus.COMPLETED


def test_track_of_a_missing_point(client: lethe.Lethe, collection: str, person: Person) -> None:
    with pytest.raises(lethe.PointNotFound) as e:
        client.track(collection, [lethe.TrackedPoint(str(uuid.uuid4()), "nowhere", tags=[person.id])], verify_points=True)
    assert e.value.reason == "point_not_found"


def test_unconfigured_backend(client: lethe.Lethe) -> None:
    # the session's server runs without Qdrant
    with pytest.raises(lethe.BackendNotConfigured) as e:
        client.create_collection(f"q_{uuid.uuid4().hex[:6]}", backend="qdrant", dimension=384)
    assert e.value.reason == "backend_not_configured"


def test_collection_settings_conflict(client: lethe.Lethe) -> None:
    name = f"c_{uuid.uuid4().hex[:8]}"
    client.create_collection(name, dimension=384)
    with pytest.raises(lethe.AlreadyExists) as e:
        client.create_collection(name, dimension=8)
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_client_side_argument_errors(client: lethe.Lethe) -> None:
    with pytest.raises(ValueError, match="backend"):
        client.create_collection("x", backend="milvus")
    with pytest.raises(TypeError):
        client.put_subject("x", identifiers=[42])  # type: ignore[list-item]


# What the client does with a reason it does not know (no server sends one today, so
# this is the one status built by hand): the base class, with reason and metadata.
def test_unknown_reason_is_the_base_class() -> None:
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2

    info = error_details_pb2.ErrorInfo(reason="quota_exceeded", domain="lethe.dev", metadata={"limit": "10"})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=8, message="quota_exceeded: slow down", details=[detail])
    err = from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, status.message, [("grpc-status-details-bin", status.SerializeToString())])
    assert type(err) is lethe.LetheError
    assert (err.reason, err.code, err.metadata) == ("quota_exceeded", grpc.StatusCode.RESOURCE_EXHAUSTED, {"limit": "10"})
    bare = from_status(grpc.StatusCode.UNIMPLEMENTED, "nope")
    assert type(bare) is lethe.LetheError and bare.reason == "unimplemented"


# A status without ErrorInfo (a proxy's or an auth gateway's): the class of its code.
@pytest.mark.parametrize(
    "code, cls",
    [
        (grpc.StatusCode.UNAUTHENTICATED, lethe.InvalidApiKey),
        (grpc.StatusCode.PERMISSION_DENIED, lethe.PermissionDenied),
        (grpc.StatusCode.INVALID_ARGUMENT, lethe.InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, lethe.NotFound),
        (grpc.StatusCode.UNAVAILABLE, lethe.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, lethe.DeadlineExceeded),
        (grpc.StatusCode.INTERNAL, lethe.InternalError),
    ],
)
def test_a_status_without_error_info_raises_the_class_of_its_code(code: grpc.StatusCode, cls: type[lethe.LetheError]) -> None:
    err = from_status(code, "denied at the gateway")
    assert type(err) is cls, err
    assert (err.reason, err.code, err.domain, err.message) == (code.name.lower(), code, "", "denied at the gateway")


# The server's gRPC library ends a call at its own request limit with CANCELLED
# "Timeout expired" (tonic's TimeoutExpired, no ErrorInfo): a timeout to the caller.
# gRPC's own client-side cancellation (and any other CANCELLED) stays what it is.
def test_the_servers_request_timeout_is_deadline_exceeded_and_a_cancellation_is_not() -> None:
    err = from_status(grpc.StatusCode.CANCELLED, "Timeout expired")
    assert type(err) is lethe.DeadlineExceeded, err
    assert (err.code, err.reason, err.domain, err.message) == (grpc.StatusCode.CANCELLED, "deadline_exceeded", "", "Timeout expired")
    for message in ("Locally cancelled by application!", "Cancelled", ""):
        other = from_status(grpc.StatusCode.CANCELLED, message)
        assert type(other) is lethe.LetheError, (message, other)
        assert (other.code, other.reason) == (grpc.StatusCode.CANCELLED, "cancelled")
    # The same words under another code are that code's.
    assert type(from_status(grpc.StatusCode.UNKNOWN, "Timeout expired")) is lethe.LetheError
