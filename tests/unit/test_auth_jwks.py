"""Registered key sets: public keys only, each with its own kid; JWKS URLs over TLS."""

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from gateway.auth.jwks import JwksError, check_jwks_url, parse_public_jwks

RSA = RSAKey.generate_key(2048, parameters={"kid": "r1"}, private=True)
EC = ECKey.generate_key("P-384", parameters={"kid": "e1"}, private=True)


def test_a_jwks_with_two_public_keys_is_read_by_kid():
    keys = parse_public_jwks({"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]})
    assert {k.kid for k in keys.keys} == {"r1", "e1"}


@pytest.mark.parametrize(
    "document,message",
    [
        ({"keys": [RSA.as_dict(private=True)]}, "private or symmetric"),
        ({"keys": [OctKey.generate_key(256, parameters={"kid": "s"}).as_dict(private=True)]}, "private or symmetric"),
        ({"keys": [{k: v for k, v in EC.as_dict(private=False).items() if k != "kid"}]}, "needs a kid"),
        ({"keys": [RSA.as_dict(private=False), {**EC.as_dict(private=False), "kid": "r1"}]}, "share a kid"),
        ({"keys": []}, "non-empty"),
        ("not json", "not JSON"),
        ({"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB"}]}, "cannot be read"),
    ],
)
def test_unusable_key_sets_are_refused_with_the_reason(document, message):
    with pytest.raises(JwksError, match=message):
        parse_public_jwks(document)


@pytest.mark.parametrize("url", ["https://agency.example.org/jwks.json", "http://127.0.0.1:8000/jwks", "http://localhost/jwks"])
def test_jwks_urls_over_tls_or_on_this_machine_are_accepted(url):
    assert check_jwks_url(url) == url


@pytest.mark.parametrize("url", ["http://agency.example.org/jwks.json", "file:///etc/passwd", "ftp://x/y", "https://"])
def test_other_jwks_urls_are_refused(url):
    with pytest.raises(JwksError):
        check_jwks_url(url)
