"""What the primary records: both endpoints accepted under the trusted-CA policy."""
from conftest import endpoints


def test_gateway_and_client_accepted_under_trusted_ca_policy(primary):
    eps = {e["name"]: e for e in endpoints(primary)}
    for name, role in (("gateway-host", "gateway"), ("pcclient-host", "client")):
        ep = eps.get(name)
        assert ep, f"{name} unknown to the primary: {sorted(eps)}"
        assert ep["role"] == role
        assert ep["decision"] == "accepted"
        assert ep["state"] == "connected"
        assert ep["subject"].startswith(f"CN={name}")
        assert ep["issuer"].startswith("CN=Acme-CA-Intermediate")
        assert ep["reason"].startswith("trusted-ca policy: chain verified")
