import os
import pathlib
import shutil
import stat
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mpclab import certs
from mpclab.launch import free_ports, run_parties
from partyrun import PROTOCOLS, start_separate

ROOT = pathlib.Path(__file__).parents[1]
SSL_SUM = str(pathlib.Path(__file__).parent / 'programs' / 'ssl_sum.py')
JOIN = os.path.join(PROTOCOLS, 'inner_join.py')


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, '-m', 'mpclab', 'certs', *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _cert(path):
    return x509.load_pem_x509_certificate(pathlib.Path(path).read_bytes())


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _names(cert):
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return cn, san.get_values_for_type(x509.DNSName)


def _same_key(a, b):
    return a.public_numbers() == b.public_numbers()


def test_cli_writes_ca_and_party_files(tmp_path):
    out = tmp_path / 'cfg'
    r = _cli('--parties', 3, '--out', out)
    assert r.returncode == 0, r.stderr
    files = {'mpyc_ca.crt', 'mpyc_ca.key'} | {f'party_{i}.{e}' for i in range(3)
                                              for e in ('crt', 'key')}
    assert {p.name for p in out.iterdir()} == files
    assert all(_mode(out / f) == 0o600 for f in files if f.endswith('.key'))
    ca = _cert(out / 'mpyc_ca.crt')
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for i in range(3):
        cert = _cert(out / f'party_{i}.crt')
        assert _names(cert) == (f'MPyC party {i}', [f'MPyC party {i}'])
        cert.verify_directly_issued_by(ca)
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_cli_keeps_existing_ca_unless_forced(tmp_path):
    assert _cli('--parties', 2, '--out', tmp_path).returncode == 0
    ca = (tmp_path / 'mpyc_ca.crt').read_bytes()
    r = _cli('--parties', 2, '--out', tmp_path)
    assert r.returncode != 0 and '--force' in r.stderr
    assert (tmp_path / 'mpyc_ca.crt').read_bytes() == ca
    assert _cli('--parties', 2, '--out', tmp_path, '--force').returncode == 0
    assert (tmp_path / 'mpyc_ca.crt').read_bytes() != ca


def test_reissue_one_party_with_existing_ca(tmp_path):
    certs.generate(3, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = _cli('--party', 1, '--out', tmp_path, '--key-type', 'rsa2048')
    assert r.returncode == 0, r.stderr
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {n for n in after if after[n] != before[n]} == {'party_1.crt', 'party_1.key'}
    cert = _cert(tmp_path / 'party_1.crt')
    cert.verify_directly_issued_by(_cert(tmp_path / 'mpyc_ca.crt'))
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 2048
    assert _mode(tmp_path / 'party_1.key') == 0o600


def test_csr_workflow_keeps_private_key_at_the_party(tmp_path):
    ca_dir, party_dir = tmp_path / 'ca', tmp_path / 'party2'
    certs.generate(0, ca_dir)
    assert _cli('--request', '--party', 2, '--out', party_dir).returncode == 0
    r = _cli('--party', 2, '--csr', party_dir / 'party_2.csr', '--out', ca_dir)
    assert r.returncode == 0, r.stderr
    assert not (ca_dir / 'party_2.key').exists()
    cert = _cert(ca_dir / 'party_2.crt')
    key = serialization.load_pem_private_key((party_dir / 'party_2.key').read_bytes(),
                                             password=None)
    assert _same_key(cert.public_key(), key.public_key())
    assert _names(cert) == ('MPyC party 2', ['MPyC party 2'])


def test_csr_name_is_decided_by_the_ca(tmp_path):
    ca = certs.make_ca()
    key = certs.new_key()
    csr = tmp_path / 'x.csr'
    certs.write_pem(csr, certs.make_csr(key, 0))  # asks for party 0
    certs.write_key(tmp_path / certs.CA_KEY, ca[0])
    certs.write_pem(tmp_path / certs.CA_CERT, ca[1])
    certs.issue_party(tmp_path, 1, csr=csr)
    assert _names(_cert(tmp_path / 'party_1.crt')) == ('MPyC party 1', ['MPyC party 1'])


@pytest.mark.parametrize('key_type, size', [('rsa3072', 3072), ('ec', 256)])
def test_key_types(key_type, size):
    ca_key, ca_cert = certs.make_ca(days=2, key_type=key_type)
    key = certs.new_key(key_type)
    cert = certs.issue_party_cert(ca_key, ca_cert, 5, key.public_key(), days=30)
    cert.verify_directly_issued_by(ca_cert)
    assert cert.public_key().key_size == size
    assert cert.not_valid_after_utc <= ca_cert.not_valid_after_utc
    with pytest.raises(ValueError):
        certs.new_key('dsa')


def test_write_key_tightens_existing_file(tmp_path):
    path = tmp_path / 'k.key'
    path.write_text('old')
    os.chmod(path, 0o644)
    certs.write_key(path, certs.new_key())
    assert _mode(path) == 0o600 and b'PRIVATE KEY' in path.read_bytes()


def _argvs(ports, extra=()):
    p_args = [a for port in ports for a in ('-P', f'localhost:{port}')]
    return [[sys.executable, SSL_SUM, *p_args, '-I', str(i), '--ssl', *extra]
            for i in range(len(ports))]


def test_mpyc_parties_connect_with_tls(tmp_path):
    certs.generate(3, tmp_path / '.config')
    results = run_parties(_argvs(free_ports(3)), cwd=str(tmp_path), timeout=120)
    for r in results:
        assert r.returncode == 0, r.stdout
        assert 'All 3 parties connected via SSL' in r.stdout
        assert 'sum = 6' in r.stdout


def _dirs(tmp_path, n=3):
    cwds = [tmp_path / f'p{i}' for i in range(n)]
    certs.generate(n, tmp_path / 'ca')
    for cwd in cwds:
        shutil.copytree(tmp_path / 'ca', cwd / '.config')
    return cwds


DEADLINE = 8   # --connect-timeout of the refused runs below


def _join_with_tls(tmp_path, cwds):
    """The join program with --ssl, every party in its own directory; returns the results
    and the wall time.  Every party must end by itself: none is killed by the test."""
    left = tmp_path / 'left.csv'
    right = tmp_path / 'right.csv'
    left.write_text('id,a\n1,0.5\n2,0.25\n')
    right.write_text('id,b\n1,1.5\n3,2.0\n')
    common = ['--id', 'id', '--ssl', '--connect-timeout', str(DEADLINE)]
    args = [['--left', str(left)] + common, ['--right', str(right)] + common, common]
    start = time.monotonic()
    with start_separate(JOIN, args, cwd=[str(c) for c in cwds]) as parties:
        results = parties.wait(timeout=60)
        assert not parties.killed, results
    return results, time.monotonic() - start


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


@pytest.mark.slow
def test_join_over_tls_works(tmp_path):
    results, _ = _join_with_tls(tmp_path, _dirs(tmp_path))
    for r in results:
        assert r.returncode == 0, r.stderr
    assert '1 in common' in results[0].stdout


@pytest.mark.slow
def test_ssl_without_certificates_names_the_missing_file_and_stops_everyone(tmp_path):
    cwds = _dirs(tmp_path)
    shutil.rmtree(cwds[1] / '.config')
    results, wall = _join_with_tls(tmp_path, cwds)
    assert wall < DEADLINE + 10
    assert all(r.returncode != 0 for r in results)
    line = _one_line(results[1].stderr)
    assert line.startswith('mpclab party 1: --ssl: no .config/party_1.crt') and 'mpclab certs' in line
    for i in (0, 2):
        assert 'could not connect to' in _one_line(results[i].stderr) and 'party 1' in results[i].stderr


@pytest.mark.slow
@pytest.mark.parametrize('rogue', [2, 0])
def test_party_with_certificate_of_another_ca_is_refused_at_once(tmp_path, rogue):
    cwds = _dirs(tmp_path)
    # The rogue party trusts the real CA but holds a certificate from its own CA.
    certs.generate(3, tmp_path / 'other')
    for ext in ('crt', 'key'):
        shutil.copy(tmp_path / 'other' / f'party_{rogue}.{ext}', cwds[rogue] / '.config')
    results, wall = _join_with_tls(tmp_path, cwds)
    assert wall < DEADLINE + 10
    assert all(r.returncode != 0 for r in results)
    assert not any('in common' in r.stdout for r in results)
    lines = [_one_line(r.stderr) for r in results]
    # Whoever checked the rogue's certificate says so, naming the party and the cause.
    assert any('TLS handshake' in line and 'certificate verify failed' in line for line in lines), lines
    for i, line in enumerate(lines):
        assert line.startswith(f'mpclab party {i}: ')


@pytest.mark.slow
def test_party_with_certificate_of_another_party_is_refused(tmp_path):
    cwds = _dirs(tmp_path)
    # Party 2 shows party 1's genuine certificate: the CA signed it, but not for party 2.
    for ext in ('crt', 'key'):
        shutil.copy(cwds[2] / '.config' / f'party_1.{ext}', cwds[2] / '.config' / f'party_2.{ext}')
    results, wall = _join_with_tls(tmp_path, cwds)
    assert wall < DEADLINE + 10
    assert all(r.returncode != 0 for r in results)
    lines = [_one_line(r.stderr) for r in results]
    assert any('TLS handshake with party 2' in line and 'ostname mismatch' in line
               for line in lines), lines
