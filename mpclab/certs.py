"""TLS certificates for MPyC's ``--ssl`` option.

With ``--ssl`` every MPyC party reads, relative to its working directory,

* ``.config/party_{i}.crt`` and ``.config/party_{i}.key``: its own certificate and key,
* ``.config/mpyc_ca.crt``: the certificate of the authority that all parties trust,

and requires every peer to show a certificate signed by that authority.  A party that
connects to party ``i`` also checks that the certificate is issued to ``MPyC party {i}``;
the certificates made here carry that name both as common name and as DNS
subjectAltName, and may be used for both ends of a connection.

Single host (tests, demos)::

    python -m mpclab certs --parties 3            # writes .config/ in the current directory

Several hosts.  One party, or a neutral operator, owns the CA; the CA key
``mpyc_ca.key`` never leaves that host.  The simple workflow has the CA owner issue
every party's key and certificate and send party ``i`` its three files
(``party_{i}.crt``, ``party_{i}.key``, ``mpyc_ca.crt``) over a confidential channel::

    python -m mpclab certs --parties 3 --out ca/           # CA plus all parties
    python -m mpclab certs --party 2 --out ca/             # reissue party 2 only

In production no private key should travel.  Then party ``i`` makes its own key and a
certificate signing request, sends only the request, and gets back its certificate and
the CA certificate::

    python -m mpclab certs --request --party 2 --out .config   # at party 2
    python -m mpclab certs --party 2 --csr party_2.csr --out ca/   # at the CA owner

The CA signs the request's public key under the name it decides, ``MPyC party 2``,
whatever subject the request asks for.  Private keys are written unencrypted (MPyC
loads them without a passphrase) with file mode 0600.
"""

from __future__ import annotations

import datetime
import os
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = 'mpyc_ca.crt'
CA_KEY = 'mpyc_ca.key'
CA_NAME = 'MPyC CA'
KEY_TYPES = ('ec', 'rsa2048', 'rsa3072')


def party_name(i: int) -> str:
    """Name MPyC expects in the certificate of party i."""
    return f'MPyC party {i}'


def party_files(i: int) -> tuple[str, str]:
    """File names (certificate, key) MPyC reads for party i."""
    return f'party_{i}.crt', f'party_{i}.key'


def new_key(key_type: str = 'ec'):
    """Return a fresh private key: EC P-256 ('ec'), or RSA ('rsa2048', 'rsa3072')."""
    if key_type == 'ec':
        return ec.generate_private_key(ec.SECP256R1())

    if key_type in ('rsa2048', 'rsa3072'):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))

    raise ValueError(f'key_type must be one of {KEY_TYPES}, not {key_type!r}')


def _validity(days):
    now = datetime.datetime.now(datetime.timezone.utc)
    # Backdate a little so that hosts with slightly slow clocks accept a fresh certificate.
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)


def make_ca(days: int = 365, key_type: str = 'ec', name: str = CA_NAME):
    """Return (key, certificate) of a new self-signed certificate authority."""
    key = new_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    not_before, not_after = _validity(days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_party_cert(ca_key, ca_cert, i: int, public_key, days: int = 365) -> x509.Certificate:
    """Return a certificate for party i on public_key, signed by the CA.

    The certificate names ``MPyC party {i}`` as common name and DNS subjectAltName, and
    allows both TLS server and client use, as every MPyC party is both.
    """
    name = party_name(i)
    not_before, not_after = _validity(days)
    # RSA keys transport session keys in old TLS suites; EC keys only sign.
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=rsa_key, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def make_csr(key, i: int) -> x509.CertificateSigningRequest:
    """Return a certificate signing request of party i for key."""
    name = party_name(i)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def write_key(path, key) -> None:
    """Write key as unencrypted PEM, readable by its owner only (mode 0600)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path = pathlib.Path(path)
    # Create with 0600 from the start: chmod after writing would leave a window open.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(pem)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file
    return path


def write_pem(path, obj) -> None:
    """Write a certificate or CSR as PEM."""
    path = pathlib.Path(path)
    path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    return path


def load_ca(out):
    """Return (key, certificate) of the CA stored in directory out."""
    out = pathlib.Path(out)
    key = serialization.load_pem_private_key((out / CA_KEY).read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate((out / CA_CERT).read_bytes())
    return key, cert


def generate(parties: int, out='.config', days: int = 365, key_type: str = 'ec',
             force: bool = False) -> list:
    """Create a CA and a key and certificate for parties 0..parties-1 in directory out.

    Refuses to replace an existing CA unless force is set, as that would invalidate every
    certificate it issued.  Returns the list of paths written.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / CA_KEY).exists() and not force:
        raise FileExistsError(f'{out / CA_KEY} exists; use force (--force) to replace the CA')

    ca_key, ca_cert = make_ca(days, key_type)
    paths = [write_key(out / CA_KEY, ca_key), write_pem(out / CA_CERT, ca_cert)]
    for i in range(parties):
        paths.extend(issue_party(out, i, days, key_type, ca=(ca_key, ca_cert)))
    return paths


def issue_party(out, i: int, days: int = 365, key_type: str = 'ec', csr=None, ca=None) -> list:
    """(Re)issue party i's certificate with the CA stored in out.

    Without csr a new key is made and written too; with csr (a path to a PEM request)
    only the certificate is written, for the request's public key.  Returns the paths.
    """
    out = pathlib.Path(out)
    ca_key, ca_cert = ca or load_ca(out)
    crt_name, key_name = party_files(i)
    if csr is None:
        key = new_key(key_type)
        cert = issue_party_cert(ca_key, ca_cert, i, key.public_key(), days)
        return [write_key(out / key_name, key), write_pem(out / crt_name, cert)]

    request = x509.load_pem_x509_csr(pathlib.Path(csr).read_bytes())
    if not request.is_signature_valid:
        raise ValueError(f'{csr}: signature of the request is not valid')

    cert = issue_party_cert(ca_key, ca_cert, i, request.public_key(), days)
    return [write_pem(out / crt_name, cert)]


def request_party(out, i: int, key_type: str = 'ec') -> list:
    """Make party i's own key and a CSR for it in out; returns the paths."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = new_key(key_type)
    _, key_name = party_files(i)
    return [write_key(out / key_name, key), write_pem(out / f'party_{i}.csr', make_csr(key, i))]


def add_arguments(parser) -> None:
    """Add the options of ``python -m mpclab certs`` to an argparse parser."""
    parser.add_argument('--parties', type=int, default=3, metavar='M',
                        help='number of parties (default 3)')
    parser.add_argument('--out', default='.config', metavar='DIR',
                        help='output directory (default .config, where MPyC looks)')
    parser.add_argument('--days', type=int, default=365, help='validity in days (default 365)')
    parser.add_argument('--key-type', choices=KEY_TYPES, default='ec',
                        help='ec (P-256, default), rsa2048 or rsa3072')
    parser.add_argument('--party', type=int, metavar='I',
                        help='(re)issue only party I, with the CA already in DIR')
    parser.add_argument('--csr', metavar='FILE',
                        help='with --party: sign this request instead of making a key')
    parser.add_argument('--request', action='store_true',
                        help='with --party: make party I\'s key and a CSR (no CA needed)')
    parser.add_argument('--force', action='store_true', help='replace an existing CA')


def main(args) -> int:
    """Run ``python -m mpclab certs`` with parsed args; returns an exit code."""
    if (args.csr or args.request) and args.party is None:
        raise SystemExit('certs: --csr and --request need --party')

    if args.request:
        paths = request_party(args.out, args.party, args.key_type)
    elif args.party is not None:
        paths = issue_party(args.out, args.party, args.days, args.key_type, args.csr)
    else:
        try:
            paths = generate(args.parties, args.out, args.days, args.key_type, args.force)
        except FileExistsError as exc:
            raise SystemExit(f'certs: {exc}')

    for path in paths:
        print(path)
    return 0
