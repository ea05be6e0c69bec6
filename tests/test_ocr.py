"""docsync.ocr: real tesseract on rendered PIL images."""

from __future__ import annotations

import pytest

from docsync.ocr import OcrPage, ocr_image, ocr_images


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _render(lines: list[str], size: tuple[int, int] = (1100, 300)):
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=42)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * 75), line, fill=0, font=font)
    return image


def test_ocr_image_returns_text_and_confidence():
    page = ocr_image(_render(["Quarterly invoice summary", "Total due within thirty days"]), page=7)
    assert isinstance(page, OcrPage)
    assert page.page == 7
    text = _norm(page.text)
    assert "quarterly invoice summary" in text
    assert "total due within thirty days" in text
    assert 60 <= page.confidence <= 100
    assert round(page.confidence, 1) == page.confidence


def test_ocr_image_keeps_lines_in_reading_order():
    page = ocr_image(_render(["First line alpha", "Second line bravo", "Third line charlie"], (1100, 300)), page=1)
    text = _norm(page.text)
    assert text.index("alpha") < text.index("bravo") < text.index("charlie")


def test_blank_image_has_no_text_and_zero_confidence():
    from PIL import Image

    page = ocr_image(Image.new("L", (600, 200), 255), page=3)
    assert page.text.strip() == ""
    assert page.confidence == 0.0


WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF"]


@pytest.mark.parametrize("workers", [1, 2])
def test_ocr_images_preserves_page_order(workers):
    # more pages than workers * 2 in flight, so the bounded window pops results early
    images = [(n, _render([f"PAGE {WORDS[n - 1]}"], (700, 120))) for n in range(1, len(WORDS) + 1)]
    results = list(ocr_images(iter(images), workers=workers))
    assert [r.page for r in results] == list(range(1, len(WORDS) + 1))
    for result, word in zip(results, WORDS):
        assert word.lower() in _norm(result.text), (result.page, result.text)
        assert result.confidence > 50


def test_ocr_images_accepts_non_consecutive_page_numbers():
    images = [(9, _render(["NINE"], (500, 120))), (2, _render(["TWO"], (500, 120)))]
    results = list(ocr_images(images, workers=2))
    assert [r.page for r in results] == [9, 2]
    assert "nine" in _norm(results[0].text) and "two" in _norm(results[1].text)


def test_ocr_images_empty_input():
    assert list(ocr_images([])) == []


def test_email_read_by_tesseract_is_rejoined():
    page = ocr_image(_render(["Contact: jane.roe@example.com"], (1100, 140)), page=1)
    assert "jane.roe@example.com" in page.text.lower()
    assert " @" not in page.text and "@ " not in page.text


def test_missing_tesseract_says_what_to_install(monkeypatch):
    from PIL import Image

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="apt install tesseract-ocr"):
        ocr_image(Image.new("L", (50, 20), 255), page=1)
