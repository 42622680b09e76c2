"""What a CreateSession answer must hold before anything computes with it (issue 21): serve, update and
the cache all read ``expiration``; an endpoint that answers junk is one refusal, never a crash later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.credentials import credential_process
from roles_anywhere.credentials.credential_process import SessionRefusedError, build_request, create_session

from .certs import make_ca, make_svid

ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
GOOD = {
    "accessKeyId": "ASIAEXAMPLE",
    "secretAccessKey": "secret",
    "sessionToken": "token",
    "expiration": "2026-12-05T04:00:00Z",
}


def answer(credentials: Any) -> bytes:
    return json.dumps({"credentialSet": [{"credentials": credentials}]}).encode()


@pytest.fixture
def request_for(tmp_path: Path) -> Any:
    svid = make_svid(make_ca("acme.teleport.sh"), "spiffe://acme.teleport.sh/svc/orders")
    (tmp_path / "svid.pem").write_text(svid.pem)
    (tmp_path / "svid_key.pem").write_text(svid.key_pem)
    return build_request(
        certificate=tmp_path / "svid.pem",
        private_key=tmp_path / "svid_key.pem",
        intermediates=None,
        trust_anchor_arn=ANCHOR,
        profile_arn=ANCHOR.replace("trust-anchor", "profile"),
        role_arn="arn:aws:iam::123456789012:role/orders",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "no credentialSet in the answer"),
        (b"not json", "no credentialSet in the answer"),
        (answer({**GOOD, "expiration": 17}), "the credentials have no text expiration"),
        ({k: v for k, v in GOOD.items() if k != "sessionToken"}, "the credentials have no text sessionToken"),
        (answer({**GOOD, "expiration": "tomorrow"}), "the credentials' expiration is not an ISO 8601 time"),
        (answer({**GOOD, "expiration": "2026-12-05T04:00:00"}), "the credentials' expiration is not an ISO"),
        (answer({**GOOD, "expiration": "\x1b[31m"}), "the credentials' expiration is not an ISO 8601 time"),
    ],
)
def test_an_answer_without_usable_credentials_is_one_refusal(
    request_for: Any, monkeypatch: pytest.MonkeyPatch, body: Any, message: str
) -> None:
    data = body if isinstance(body, bytes) else answer(body)
    monkeypatch.setattr(credential_process, "_post", lambda *_a, **_k: (201, "", data))
    with pytest.raises(SessionRefusedError) as refused:
        create_session(request_for, verify=False)
    assert refused.value.code == "InvalidResponse"
    assert refused.value.message.startswith(message)


@pytest.mark.parametrize(
    "expiration", ["2026-12-05T04:00:00Z", "2026-12-05T04:00:00.123456Z", "2026-12-05T04:00:00+00:00"]
)
def test_a_good_answer_is_the_credentials(
    request_for: Any, monkeypatch: pytest.MonkeyPatch, expiration: str
) -> None:
    data = answer({**GOOD, "expiration": expiration})
    monkeypatch.setattr(credential_process, "_post", lambda *_a, **_k: (201, "", data))
    assert create_session(request_for, verify=False) == {**GOOD, "expiration": expiration}
