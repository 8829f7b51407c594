"""certkit.keychoice: the certificate a Java client offers for the CA names a server lists.

Certificates come from the openssl CLI (fixtures_openssl), so names are encoded as OpenSSL
encodes them, not as our own code would. The rule pinned here is the JDK's own
(SunX509KeyManagerImpl.getAliases: the issuers of every certificate of the entry's chain are
compared with the requested names as X500Principals).
"""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from certkit.keychoice import canonical, choose, issuers, name_from_der
from support.fixtures_openssl import CA_EXT, CLIENT_EXT, OpenSSLPKI, openssl


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    p = OpenSSLPKI(tmp_path_factory.mktemp("keychoice"))
    root = p.root("Root")
    inter = p.issue("Inter", root, CA_EXT)
    made = {"root": root, "inter": inter, "leaf": p.issue("client", inter, CLIENT_EXT),
            "other": p.root("OtherRoot"), "direct": p.issue("direct", root, CLIENT_EXT)}
    return {name: issued.cert for name, issued in made.items()}


@pytest.fixture(scope="module")
def odd_name(tmp_path_factory) -> x509.Certificate:
    """A subject as OpenSSL's "default" string mask writes it: BMPString, PrintableString, a multi-valued RDN."""
    folder = tmp_path_factory.mktemp("odd-name")
    config = folder / "req.cnf"
    config.write_text("[req]\ndistinguished_name = dn\nprompt = no\nstring_mask = default\n[dn]\nCN = unused\n")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(folder / "k.pem"))
    openssl("req", "-x509", "-new", "-key", str(folder / "k.pem"), "-utf8", "-multivalue-rdn", "-days", "2",
            "-subj", "/CN=Zürich Ωmega+OU=Ops/O=Fixture/C=CH", "-config", str(config), "-out", str(folder / "c.pem"))
    return x509.load_pem_x509_certificate((folder / "c.pem").read_bytes())


def cn(value: str, org: str = "Fixture") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


# --- names as a CertificateRequest carries them (DER) ----------------------------------------------

@pytest.mark.parametrize("which", ["root", "inter", "leaf"])
def test_der_names_read_back_as_cryptography_reads_them(pki, which):
    subject = pki[which].subject
    assert name_from_der(subject.public_bytes()) == subject


def test_string_types_and_multi_valued_rdns_read_back(odd_name):
    name = name_from_der(odd_name.subject.public_bytes())
    assert name == odd_name.subject
    assert [len(rdn) for rdn in name.rdns] == [2, 1, 1]  # CN+OU stays one RDN
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Zürich Ωmega"  # a BMPString


def test_a_value_that_is_not_a_string_is_refused():
    name = x509.Name([x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x01\x02", x509.name._ASN1Type.BitString)])
    with pytest.raises(ValueError, match="has a value of DER type 0x3, not a string"):
        name_from_der(name.public_bytes())


@pytest.mark.parametrize("der, why", [
    (b"", "truncated"),
    (b"\x30\x05\x31\x03", "truncated"),
    (b"\x04\x00", "not a DER distinguished name"),
    (b"\x30\x00\x00", "not a DER distinguished name"),  # trailing bytes
    (b"\x30\x02\x31\x00", "empty relative distinguished name"),
    (b"\x30\x0b\x31\x09\x30\x07\x06\x03\x55\x04\x03\x02\x00", "not a string"),  # CN as an INTEGER
    (b"\x30\x0b\x31\x09\x30\x07\x06\x03\x55\x04\x83\x0c\x00", "bad DER object identifier"),
], ids=["empty", "short", "not-a-sequence", "trailing", "empty-rdn", "integer-value", "bad-oid"])
def test_malformed_names_are_refused(der, why):
    with pytest.raises(ValueError, match=why):
        name_from_der(der)


# --- names compare as X500Principal does -------------------------------------------------------------

def test_case_spacing_and_string_type_do_not_matter():
    printable = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Acme CA  Root", x509.name._ASN1Type.PrintableString)])
    utf8 = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, " acme ca root ", x509.name._ASN1Type.UTF8String)])
    assert printable.public_bytes() != utf8.public_bytes()
    assert canonical(printable) == canonical(utf8)


def test_other_values_order_or_attributes_differ():
    assert canonical(cn("Root")) != canonical(cn("Root2"))
    assert canonical(cn("Root")) != canonical(x509.Name(list(reversed(list(cn("Root"))))))  # RDN order counts
    assert canonical(cn("Root")) != canonical(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Root")]))


def test_order_inside_a_multi_valued_rdn_does_not_matter():
    a = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "x"),
                                                   x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "y")])])
    b = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "y"),
                                                   x509.NameAttribute(NameOID.COMMON_NAME, "x")])])
    assert canonical(a) == canonical(b)


# --- the choice ---------------------------------------------------------------------------------------

def test_issuers_are_each_certificates_issuer(pki):
    assert issuers([pki["leaf"], pki["inter"]]) == [pki["inter"].subject, pki["root"].subject]


@pytest.mark.parametrize("ca_names", [None, []], ids=["no-list", "empty-list"])
def test_without_names_the_first_chain_is_sent(pki, ca_names):
    chains = [[pki["leaf"], pki["inter"]], [pki["direct"]]]
    assert choose(chains, ca_names) == chains[0]
    assert choose([[], [pki["direct"]]], ca_names) == [pki["direct"]]  # an entry without certificates is no entry
    assert choose([], ca_names) is None


def test_root_named_and_the_chain_holds_the_intermediate(pki):
    chain = [pki["leaf"], pki["inter"]]
    assert choose([chain], [pki["root"].subject]) == chain


def test_root_named_but_the_store_lacks_the_intermediate_sends_nothing(pki):
    # The product's case: the server trusts only the root, the client's PFX lacks the intermediate.
    assert choose([[pki["leaf"]]], [pki["root"].subject]) is None


def test_intermediate_named_and_the_leaf_alone(pki):
    assert choose([[pki["leaf"]]], [pki["inter"].subject]) == [pki["leaf"]]


def test_unrelated_names_send_nothing(pki):
    assert choose([[pki["leaf"], pki["inter"]]], [pki["other"].subject, cn("Nobody")]) is None


def test_the_certificates_own_subject_is_not_an_issuer(pki):
    # Java compares issuers only: naming the entity itself does not select it.
    assert choose([[pki["leaf"], pki["inter"]]], [pki["leaf"].subject]) is None
    assert choose([[pki["inter"]]], [pki["inter"].subject]) is None


def test_first_matching_chain_in_store_order(pki):
    unrelated, matching, also = [pki["other"]], [pki["direct"]], [pki["leaf"], pki["inter"]]
    assert choose([unrelated, matching, also], [pki["root"].subject]) == matching


def test_names_match_whatever_their_case(pki):
    shouted = cn("ROOT", "FIXTURE")
    assert choose([[pki["direct"]]], [shouted]) == [pki["direct"]]
