"""Collect and validate page images: directories, files, list files, or the built-in synthetic set.

Loading follows the official DeepSeek-OCR loader (open, ``ImageOps.exif_transpose``,
``convert("RGB")``). Unusual but readable images (CMYK, RGBA, grayscale, palette, 16-bit) are
converted and the conversion is noted; unreadable ones (missing, zero bytes, not an image, corrupt,
decompression bombs) are skipped with a warning, or are fatal with ``strict``. No usable image at
all is a :class:`~llm_perf_opt.errors.UserError`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from attrs import define, field
from PIL import Image, ImageOps, UnidentifiedImageError

from llm_perf_opt.errors import UserError
from llm_perf_opt.io.files import read_text
from llm_perf_opt.profiling.synthetic import SYNTHETIC_KINDS, write_synthetic_pages

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
LIST_EXTENSIONS: tuple[str, ...] = (".txt", ".lst")
CATEGORIES: tuple[str, ...] = ("text_heavy", "mixed_layout", "image_rich")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@define(kw_only=True)
class InputIssue:
    """One problem with one input: skipped (not profiled) or converted (profiled after conversion)."""

    path: str
    problem: str
    action: str
    """``skipped`` or ``converted``."""

    def line(self) -> str:
        return f"{self.path}: {self.problem} ({self.action})"


@define(kw_only=True)
class PageImage:
    """A validated page, converted to RGB and held in memory."""

    path: Path
    image: Image.Image = field(repr=False)
    width: int
    height: int
    category: str
    sha256: str
    source_mode: str
    """PIL mode of the file before conversion (e.g. RGB, RGBA, CMYK, I;16)."""
    file_bytes: int

    @property
    def name(self) -> str:
        return self.path.name


@define(kw_only=True)
class InputCollection:
    """The usable pages plus every issue found while collecting them."""

    set_id: str
    root_dir: Path
    pages: list[PageImage]
    issues: list[InputIssue] = field(factory=list)
    synthetic: bool = False

    @property
    def skipped(self) -> list[InputIssue]:
        return [i for i in self.issues if i.action == "skipped"]

    @property
    def converted(self) -> list[InputIssue]:
        return [i for i in self.issues if i.action == "converted"]


def _category_from_name(path: Path) -> str:
    stem = path.stem.lower().replace("-", "_")
    for cat in CATEGORIES:
        if cat in stem:
            return cat
    return "unknown"


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _scan_directory(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and _is_image_name(p)
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def _read_list_file(list_file: Path) -> list[str]:
    text = read_text(list_file, "image list")  # regular file, size-capped (a FIFO or /dev/zero is refused)
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            entry = Path(line).expanduser()
            out.append(str(entry if entry.is_absolute() else list_file.parent / entry))
    return out


def collect_image_paths(sources: Sequence[str | Path]) -> tuple[list[Path], list[InputIssue]]:
    """Expand directories (recursively) and list files; a missing command-line path is an error.

    Returns the candidate files (deduplicated, in order) and issues (empty directories, missing
    entries of a list file).
    """
    paths: list[Path] = []
    issues: list[InputIssue] = []

    def add_dir(directory: Path) -> None:
        found = _scan_directory(directory)
        if not found:
            issues.append(
                InputIssue(
                    path=str(directory),
                    problem=f"directory has no image files ({', '.join(IMAGE_EXTENSIONS)})",
                    action="skipped",
                )
            )
        paths.extend(found)

    for source in sources:
        path = Path(source).expanduser()
        if not path.exists():
            raise UserError(f"image path {source} does not exist")
        if path.is_dir():
            add_dir(path)
        elif path.suffix.lower() in LIST_EXTENSIONS:
            entries = _read_list_file(path)
            if not entries:
                issues.append(InputIssue(path=str(path), problem="image list is empty", action="skipped"))
            for entry in entries:
                entry_path = Path(entry)
                if entry_path.is_dir():
                    add_dir(entry_path)
                elif entry_path.exists():
                    paths.append(entry_path)
                else:
                    issues.append(
                        InputIssue(path=entry, problem=f"listed in {path.name} but does not exist", action="skipped")
                    )
        else:
            paths.append(path)
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        resolved = p.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(resolved)
    return unique, issues


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Convert like the official loader; return the RGB image and a note when it was not RGB."""
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in _SIXTEEN_BIT:
        # convert("RGB") would clip every value above 255 to white; scale to 8 bit first.
        scaled = image.point(lambda v: v / 257).convert("L") if mode != "I" else image.convert("L")
        if mode != "I":
            return scaled.convert("RGB"), f"{mode} (16-bit) scaled to 8-bit grayscale, then RGB"
        return scaled.convert("RGB"), "32-bit integer grayscale converted to RGB (values clipped to 0..255)"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        return image.convert("RGB"), f"{mode} with alpha: alpha dropped by convert('RGB') as the official loader does"
    return image.convert("RGB"), f"{mode} converted to RGB as the official loader does"


def load_page_image(path: Path, *, max_pixels: int | None = None) -> tuple[PageImage | None, list[InputIssue]]:
    """Open, verify and convert one image; (None, [skip issue]) when it cannot be used."""
    issues: list[InputIssue] = []

    def skip(problem: str) -> tuple[None, list[InputIssue]]:
        return None, [InputIssue(path=str(path), problem=problem, action="skipped")]

    try:
        size = path.stat().st_size
    except OSError as exc:
        return skip(f"cannot read file: {exc.strerror or exc}")
    if not path.is_file():
        return skip("not a regular file")
    if size == 0:
        return skip("empty file (0 bytes)")
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if limit is not None and width * height > limit:
                    return skip(
                        f"{width}x{height} = {width * height / 1e6:.0f} MP exceeds the "
                        f"{limit / 1e6:.0f} MP decompression-bomb limit"
                    )
                frames = getattr(opened, "n_frames", 1)
                opened.load()
                source_mode = opened.mode
                image = ImageOps.exif_transpose(opened) or opened
                image.load()
                rgb, note = _to_rgb(image)
                rgb.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return skip(f"decompression bomb: {exc}")
    except UnidentifiedImageError:
        return skip("not a readable image (unknown or invalid format)")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return skip(f"corrupt or truncated image: {str(exc) or type(exc).__name__}")
    if note:
        issues.append(InputIssue(path=str(path), problem=note, action="converted"))
    if frames > 1:
        issues.append(
            InputIssue(path=str(path), problem=f"{frames} frames: only the first is used", action="converted")
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    page = PageImage(
        path=path,
        image=rgb,
        width=rgb.width,
        height=rgb.height,
        category=_category_from_name(path),
        sha256=digest,
        source_mode=source_mode,
        file_bytes=size,
    )
    return page, issues


def _raise_if_strict(issues: list[InputIssue], strict: bool) -> None:
    skipped = [i for i in issues if i.action == "skipped"]
    if strict and skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise UserError(f"--strict: {skipped[0].line()}{more}")


def collect_inputs(
    sources: Sequence[str | Path] | None,
    *,
    strict: bool = False,
    synthetic_dir: Path | None = None,
    synthetic_seed: int = 0,
    max_pixels: int | None = None,
) -> InputCollection:
    """Validated pages from ``sources``; without sources, the synthetic set written to ``synthetic_dir``."""
    if not sources:
        if synthetic_dir is None:
            raise UserError("no --images given and no directory for the synthetic pages")
        written = write_synthetic_pages(synthetic_dir, seed=synthetic_seed)
        pages = []
        for path, kind in written:
            page, _ = load_page_image(path)
            if page is None:  # pragma: no cover - our own PNGs always load
                raise UserError(f"could not re-read synthetic page {path}")
            page.category = kind
            pages.append(page)
        return InputCollection(
            set_id="synthetic-" + "-".join(SYNTHETIC_KINDS),
            root_dir=synthetic_dir.resolve(),
            pages=pages,
            synthetic=True,
        )
    paths, issues = collect_image_paths(sources)
    _raise_if_strict(issues, strict)
    pages = []
    for path in paths:
        page, found = load_page_image(path, max_pixels=max_pixels)
        issues.extend(found)
        _raise_if_strict(found, strict)
        if page is not None:
            pages.append(page)
    if not pages:
        reasons = "; ".join(i.line() for i in issues[:3]) or "no image files given"
        more = f" (and {len(issues) - 3} more)" if len(issues) > 3 else ""
        raise UserError(f"no usable images: {reasons}{more}")
    root = Path(os.path.commonpath([str(p.path.parent) for p in pages]))
    set_id = root.name or "images"
    return InputCollection(set_id=set_id, root_dir=root, pages=pages, issues=issues)
