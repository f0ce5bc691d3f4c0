"""Credit transfer ids are idempotency keys: the ids derived for existing inputs must not
change, or a post would miss the hold made before it (and a retry would charge twice)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from worker.bots import credit_gate
from worker.bots.model import derived_id
from worker.credits import TransferRequest, order_transfer_id, transfer_id

CID = "t0123456789abcdef0123456789abcd"
RUN = uuid.UUID("00000000-0000-0000-0000-000000000001")


def test_ids_of_existing_inputs_are_what_they_were() -> None:
    # Recorded from the derivations before the bots went through worker.credits.
    assert order_transfer_id(CID, "hold") == uuid.UUID("523fcf85-8a2d-5f76-ae14-4a2575cb1469")
    assert transfer_id("backtest.run", RUN, "post") == uuid.UUID(
        "e7dcfc99-62a7-5639-ac7c-b40105b7f4d2"
    )


def test_a_trade_hold_keeps_the_id_the_bot_engine_derived_from_its_order() -> None:
    for cid in (CID, "e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6", "x"):
        for phase in ("hold", "post", "void"):
            assert order_transfer_id(cid, phase) == derived_id(cid, phase)  # type: ignore[arg-type]
    # ... and stays apart from the order and trade rows of the same client id.
    ids = {order_transfer_id(CID, p) for p in ("hold", "post", "void")}
    assert ids.isdisjoint({derived_id(CID, "order"), derived_id(CID, "trade")})


def test_the_bots_batch_elements_are_the_ones_they_sent_as_dicts() -> None:
    hold = credit_gate.hold_id(CID)
    assert credit_gate.post(CID, hold).to_json() == {
        "action": "post",
        "id": str(derived_id(CID, "post")),
        "pending_id": str(hold),
    }
    assert credit_gate.void(CID, str(hold)).to_json() == {
        "action": "void",
        "id": str(derived_id(CID, "void")),
        "pending_id": str(hold),
    }
    user, usage = uuid.uuid4(), uuid.uuid4()
    request = TransferRequest.hold(
        id=hold,
        debit_account_id=user,
        credit_account_id=usage,
        amount=Decimal("0.5"),
        expires_after=credit_gate.HOLD_TIMEOUT,
        reference_type="order",
        reference_id=CID,
        metadata={"bot_id": "b1", "usage": "trade"},
    )
    assert request.to_json() == {
        "action": "hold",
        "id": str(derived_id(CID, "hold")),
        "debit_account_id": str(user),
        "credit_account_id": str(usage),
        "amount": "0.5",
        "kind": "usage",
        "timeout_seconds": timedelta(hours=1).total_seconds(),
        "reference_type": "order",
        "reference_id": CID,
        "metadata": {"bot_id": "b1", "usage": "trade"},
    }
