"""Leases in the export table: a reference that left aptio (a pickle Ray carries) holds its
object until the first receiver claims it or the lease runs out; a claim that overtakes its
lease is remembered; an object released after a lease is known as such (its late callers get
LeaseExpiredError)."""

from __future__ import annotations

from typing import Any

from aptio._remote.exports import Exports


def _stub() -> Any:
    return object()  # the table only keeps it, by identity


def test_a_lease_holds_until_the_first_claim_then_the_claimer_holds() -> None:
    exports = Exports()
    stub = _stub()
    object_id = exports.export_leased(stub, "L")
    assert exports.lookup(object_id) is stub
    exports.claim(object_id, "L", "receiver")
    assert exports.lookup(object_id) is stub  # the receiver holds it now
    exports.claim(object_id, "L", "second reader")  # the same pickle read again: it lives
    exports.release(object_id, "receiver", 1)
    assert exports.lookup(object_id) is stub
    exports.release(object_id, "second reader", 1)
    assert exports.lookup(object_id) is None
    assert exports.lease_ended(object_id)


def test_a_lease_nobody_claims_ends_and_its_object_goes() -> None:
    exports = Exports()
    object_id = exports.export_leased(_stub(), "L")
    exports.end_lease("L")
    assert exports.lookup(object_id) is None
    assert exports.lease_ended(object_id)
    exports.claim(object_id, "L", "late")  # too late: it holds nothing
    exports.release(object_id, "late", 1)  # and its release is ignored
    assert exports.holders() == 0


def test_a_lease_on_an_object_held_elsewhere_ends_without_releasing_it() -> None:
    exports = Exports()
    stub = _stub()
    object_id = exports.export(stub, "holder")
    assert exports.lease(object_id, "L")
    exports.end_lease("L")
    assert exports.lookup(object_id) is stub
    assert not exports.lease_ended(object_id)
    exports.release(object_id, "holder", 1)
    assert exports.lease_ended(object_id)  # it travelled leased: a late caller is told so


def test_a_claim_that_overtakes_its_lease_leaves_the_lease_nothing_to_hold() -> None:
    exports = Exports()
    stub = _stub()
    object_id = exports.export(stub, "passer")
    exports.claim(object_id, "L", "receiver")  # the receiver's claim came first
    assert not exports.lease(object_id, "L")  # the passer's lease, late: holds nothing
    exports.release(object_id, "passer", 1)
    assert exports.lookup(object_id) is stub  # the receiver's
    exports.release(object_id, "receiver", 1)
    assert exports.holders() == 0


def test_a_dead_holder_claims_nothing_and_a_lease_on_nothing_holds_nothing() -> None:
    exports = Exports()
    object_id = exports.export_leased(_stub(), "L")
    exports.holder_gone("dead")
    exports.claim(object_id, "L", "dead")
    assert exports.lookup(object_id) is None  # the lease ended, the dead claimer holds none
    assert not exports.lease(object_id, "M")
