"""What the primary records: both endpoints accepted under the trusted-CA policy."""
from conftest import endpoint, endpoints


def test_gateway_and_client_accepted_under_trusted_ca_policy(primary):
    for name, role in (("gateway-host", "gateway"), ("pcclient-host", "client")):
        ep = endpoint(primary, name)
        assert ep, f"{name} unknown to the primary: {sorted(e['name'] for e in endpoints(primary))}"
        assert ep["role"] == role
        assert ep["decision"] == "accepted"
        assert ep["state"] == "connected"
        assert ep["subject"].startswith(f"CN={name}")
        assert ep["issuer"].startswith("CN=Acme-CA-Intermediate")
        assert ep["reason"].startswith("trusted-ca policy: chain verified")
