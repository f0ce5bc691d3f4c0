"""Sealed exchange keys: AES-256-GCM envelopes that a WebCrypto Edge Function can produce."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil

import pytest

from worker.errors import Fatal
from worker.exchanges import ExchangeCredentials
from worker.sealing import Keyring, SealError, SealingSettings, generate_master_key, key_id_of

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(32, 64))).decode()
CREDS = ExchangeCredentials(api_key="AKIA-live-key", secret="s3cr3t-value", password="pass-phrase")


def test_seal_and_open_round_trip() -> None:
    ring = Keyring.parse(f"k2024:{KEY_A}")
    sealed = CREDS.seal(ring)
    assert sealed.startswith("v1:k2024:")
    assert "s3cr3t" not in sealed and "AKIA" not in sealed
    assert ExchangeCredentials.open(ring, sealed) == CREDS


def test_envelope_has_the_documented_shape() -> None:
    sealed = CREDS.seal(Keyring.parse(f"kid1:{KEY_A}"))
    version, kid, nonce, body = sealed.split(":")
    assert (version, kid) == ("v1", "kid1")
    assert len(base64.b64decode(nonce)) == 12
    plaintext_len = len(CREDS.to_json().encode())
    assert len(base64.b64decode(body)) == plaintext_len + 16  # ciphertext + GCM tag


def test_each_seal_uses_a_fresh_nonce() -> None:
    ring = Keyring.parse(f"kid1:{KEY_A}")
    assert CREDS.seal(ring) != CREDS.seal(ring)


def test_repr_and_str_never_show_secrets() -> None:
    for text in (repr(CREDS), str(CREDS), f"{CREDS}", repr([CREDS])):
        assert "s3cr3t" not in text and "AKIA" not in text and "pass-phrase" not in text
    ring = Keyring.parse(f"kid1:{KEY_A}")
    assert KEY_A not in repr(ring)


def test_tampered_envelope_is_refused() -> None:
    ring = Keyring.parse(f"kid1:{KEY_A}")
    version, kid, nonce, body = CREDS.seal(ring).split(":")
    raw = bytearray(base64.b64decode(body))
    raw[0] ^= 1
    with pytest.raises(SealError, match="tampered or wrong key"):
        ExchangeCredentials.open(
            ring, ":".join([version, kid, nonce, base64.b64encode(bytes(raw)).decode()])
        )


def test_key_id_is_authenticated() -> None:
    # Same key bytes under another id: relabelling the envelope must not open.
    ring = Keyring.parse(f"kid1:{KEY_A},kid2:{KEY_A}")
    sealed = CREDS.seal(ring)
    with pytest.raises(SealError):
        ExchangeCredentials.open(ring, sealed.replace("v1:kid1:", "v1:kid2:"))


def test_unknown_key_id_names_the_key() -> None:
    sealed = CREDS.seal(Keyring.parse(f"old:{KEY_A}"))
    with pytest.raises(SealError, match=r"'old'.*TRADEFLEET_MASTER_KEYS"):
        ExchangeCredentials.open(Keyring.parse(f"new:{KEY_B}"), sealed)


def test_rotation_reseals_under_the_current_key() -> None:
    old_ring = Keyring.parse(f"k1:{KEY_A}")
    sealed = CREDS.seal(old_ring)
    ring = SealingSettings(tradefleet_master_keys=f"k2:{KEY_B},k1:{KEY_A}").keyring()
    assert ring.current_key_id == "k2"
    assert ring.needs_reseal(sealed)
    resealed = ring.reseal(sealed)
    assert key_id_of(resealed) == "k2" and not ring.needs_reseal(resealed)
    assert ring.reseal(resealed) == resealed
    assert ExchangeCredentials.open(Keyring.parse(f"k2:{KEY_B}"), resealed) == CREDS


def test_missing_or_bad_master_keys_are_fatal() -> None:
    with pytest.raises(Fatal, match="TRADEFLEET_MASTER_KEYS is not set"):
        SealingSettings(tradefleet_master_keys=None).keyring()
    with pytest.raises(Fatal, match="32 bytes"):
        Keyring.parse("k:" + base64.b64encode(b"short").decode())
    assert len(base64.b64decode(generate_master_key())) == 32


def test_password_is_optional() -> None:
    ring = Keyring.parse(f"k:{KEY_A}")
    creds = ExchangeCredentials(api_key="a", secret="b")
    assert ExchangeCredentials.open(ring, creds.seal(ring)).password is None


WEBCRYPTO_SEAL = """
const [keyId, b64Key, payload] = process.argv.slice(1);
const raw = Uint8Array.from(atob(b64Key), c => c.charCodeAt(0));
const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
const b64 = (b) => btoa(String.fromCharCode(...b));
const unb64 = (s) => Uint8Array.from(atob(s), c => c.charCodeAt(0));
if (payload.startsWith("v1:")) {
  const [, kid, iv, ct] = payload.split(":");
  const pt = await crypto.subtle.decrypt(
    {name: "AES-GCM", iv: unb64(iv), additionalData: new TextEncoder().encode(kid)}, key, unb64(ct));
  console.log(new TextDecoder().decode(pt));
} else {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await crypto.subtle.encrypt(
    {name: "AES-GCM", iv, additionalData: new TextEncoder().encode(keyId)}, key,
    new TextEncoder().encode(payload)));
  console.log(`v1:${keyId}:${b64(iv)}:${b64(ct)}`);
}
"""


async def _webcrypto(*args: str) -> str:
    node = shutil.which("node")
    assert node is not None
    proc = await asyncio.create_subprocess_exec(
        node,
        "--input-type=module",
        "-e",
        WEBCRYPTO_SEAL,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for WebCrypto")
async def test_webcrypto_sealed_envelope_opens_in_python() -> None:
    payload = json.dumps({"api_key": "from-edge", "secret": "edge-secret", "password": None})
    sealed = await _webcrypto("edge1", KEY_A, payload)
    creds = ExchangeCredentials.open(Keyring.parse(f"edge1:{KEY_A}"), sealed)
    assert (creds.api_key, creds.secret, creds.password) == ("from-edge", "edge-secret", None)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for WebCrypto")
async def test_python_sealed_envelope_opens_in_webcrypto() -> None:
    sealed = CREDS.seal(Keyring.parse(f"edge1:{KEY_A}"))
    opened = json.loads(await _webcrypto("edge1", KEY_A, sealed))
    assert opened == {"api_key": CREDS.api_key, "secret": CREDS.secret, "password": CREDS.password}


def test_master_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEFLEET_MASTER_KEYS", f"k2:{KEY_B},k1:{KEY_A}")
    settings = SealingSettings()
    assert KEY_B not in repr(settings)  # a secret never prints
    ring = settings.keyring()
    assert ring.current_key_id == "k2" and ring.key_ids == ["k2", "k1"]


def test_keys_rotate_refuses_to_run_without_keys_or_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.cli import main

    monkeypatch.delenv("TRADEFLEET_MASTER_KEYS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["keys", "rotate"]) == 2
    assert "set DATABASE_URL or pass --database-url" in capsys.readouterr().err
    assert main(["keys", "rotate", "--database-url", "postgresql://nowhere/db"]) == 2
    assert "TRADEFLEET_MASTER_KEYS is not set" in capsys.readouterr().err
