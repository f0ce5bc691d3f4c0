"""The public API's data requests refuse a timeframe an exchange does not offer before the
fleet tries it: the exchanges and exceptions in ``supabase/functions/api/openapi.ts`` must
agree with ccxt's ``timeframes``, which the download checks (``worker.data.download``)."""

from __future__ import annotations

import re
from pathlib import Path

import ccxt

OPENAPI = Path(__file__).resolve().parents[2] / "supabase" / "functions" / "api" / "openapi.ts"


def _strings(text: str) -> list[str]:
    return re.findall(r'"([^"]+)"', text)


def test_the_api_offers_exactly_the_timeframes_ccxt_offers_per_exchange() -> None:
    source = OPENAPI.read_text()
    timeframes = _strings(re.search(r"const TIMEFRAMES = \[([^\]]*)\]", source)[1])  # type: ignore[index]
    exchanges = _strings(re.search(r"const EXCHANGES = \[([^\]]*)\]", source)[1])  # type: ignore[index]
    block = re.search(r"EXCHANGE_TIMEFRAMES[^=]*= \{(.*?)\n\};", source, re.S)[1]  # type: ignore[index]
    exceptions = {
        name: _strings(listed) for name, listed in re.findall(r"(\w+): \[([^\]]*)\]", block)
    }
    assert exchanges and timeframes
    for exchange in exchanges:
        offered = getattr(ccxt, exchange)().timeframes
        expected = [tf for tf in timeframes if tf in offered]
        assert exceptions.get(exchange, timeframes) == expected, exchange
