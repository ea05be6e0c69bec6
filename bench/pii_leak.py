"""PII leak rate of docsync.pii on the presidio-research synthetic dev split.

Two measurements, per labelled entity type:

* text: anonymize each record's ``full_text`` and count the labelled values that survive
  verbatim in the output (plus a stricter token-level rate: any word of 3+ characters of
  the value that is still there and is not explained by the record's unlabelled text);
* scanned (end to end): render records into image-only PDFs (fpdf2 Courier, rasterized
  at 300 dpi with pypdfium2, no text layer), run them through ``parse_document`` (OCR)
  and ``anonymize_many`` exactly like the pipeline does, and count the same way.

Run: ``python -m bench.pii_leak`` (``--help`` for options). Only counts are printed, never
values, unless ``--show-leaks`` is given (for development on the synthetic data).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docsync.config import apply_offline_env

if TYPE_CHECKING:
    from docsync.config import Settings

apply_offline_env()

# The shared data folder sits beside the repository (../shared/ from the repo root).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "presidio_research_synth_dev.json"
TARGETS = {  # entity type -> highest acceptable verbatim leak rate
    "EMAIL_ADDRESS": 0.01,
    "PHONE_NUMBER": 0.01,
    "US_SSN": 0.01,
    "CREDIT_CARD": 0.01,
    "IBAN_CODE": 0.01,
    "PERSON": 0.10,
}
# Labelled types that docsync anonymizes (the data set also labels places, dates, ...).
MEASURED = (*TARGETS, "IP_ADDRESS", "US_DRIVER_LICENSE")
_WORD = re.compile(r"\w{3,}")
_GENERIC = {"com", "net", "org", "www", "http", "https"}  # URL pieces: not evidence of a leak


def load_records(path: Path = DATA) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def select(records: list[dict], n: int) -> list[dict]:
    """A deterministic sample of ``n`` records that covers every measured type: records
    are taken round-robin from per-type queues (rarest type first), then in file order."""
    queues = {t: [i for i, r in enumerate(records) if any(s["entity_type"] == t for s in r["spans"])] for t in MEASURED}
    order = sorted(queues, key=lambda t: len(queues[t]))
    chosen: list[int] = []
    seen: set[int] = set()
    while len(chosen) < n and any(queues.values()):
        for t in order:
            while queues[t] and queues[t][0] in seen:
                queues[t].pop(0)
            if queues[t] and len(chosen) < n:
                seen.add(queues[t][0])
                chosen.append(queues[t].pop(0))
    chosen += [i for i in range(len(records)) if i not in seen][: n - len(chosen)]
    return [records[i] for i in sorted(chosen)]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _near_copy(value: str, text: str, threshold: float = 85.0) -> bool:
    """A substring of ``text`` within ~15% edits of ``value`` (case, spacing and
    punctuation ignored): what survives when OCR misreads a character or two."""
    from rapidfuzz import fuzz

    def compact(s: str) -> str:
        return re.sub(r"[\W_]+", "", s).lower()

    needle = compact(value)
    if len(needle) < 6:  # too short for edit distance: the same word, case ignored
        return re.search(rf"(?<!\w){re.escape(_squash(value).lower())}(?!\w)", _squash(text).lower()) is not None
    return fuzz.partial_ratio(needle, compact(text)) >= threshold


def _words(text: str) -> Counter:
    return Counter(w.lower() for w in _WORD.findall(text) if w.lower() not in _GENERIC)


@dataclass
class Tally:
    values: Counter = field(default_factory=Counter)
    verbatim: Counter = field(default_factory=Counter)
    token: Counter = field(default_factory=Counter)
    fuzzy: Counter = field(default_factory=Counter)  # a near copy survives (OCR misreads a character or two)
    readable: Counter = field(default_factory=Counter)  # scanned mode: value verbatim in the OCR text
    leaks: list = field(default_factory=list)
    background_words: int = 0  # words outside every labelled span (not PII)...
    background_lost: int = 0  # ...and how many of them anonymization removed (over-redaction)

    def add(self, source: str, spans: list[dict], before: str, after: str) -> None:
        """Count the labelled values of one record: ``source`` is the text the spans index,
        ``before`` the text given to anonymize (OCR output in scanned mode), ``after`` its result."""
        masked = list(source)
        for s in spans:
            masked[s["start_position"] : s["end_position"]] = " " * (s["end_position"] - s["start_position"])
        background = _words("".join(masked))  # words of the record that are not labelled PII
        out_words, out_flat, before_flat = _words(after), _squash(after), _squash(before)
        seen = _words(before)  # in scanned mode only the words OCR read can be lost
        self.background_words += sum(min(n, seen[w]) for w, n in background.items())
        self.background_lost += sum(max(0, min(n, seen[w]) - out_words[w]) for w, n in background.items())
        for s in spans:
            kind = s["entity_type"]
            if kind not in MEASURED:
                continue
            value = _squash(s["entity_value"])
            self.values[kind] += 1
            self.readable[kind] += value in before_flat
            if value in out_flat:
                self.verbatim[kind] += 1
                self.leaks.append((kind, value))
            if any(out_words[w] > background[w] for w in _words(value)):
                self.token[kind] += 1
            if _near_copy(value, after):
                self.fuzzy[kind] += 1

    @property
    def over_redaction(self) -> float:
        return self.background_lost / max(self.background_words, 1)

    def rows(self) -> list[dict]:
        out = []
        for kind in MEASURED:
            n = self.values[kind]
            if not n:
                continue
            out.append(
                {
                    "entity": kind,
                    "values": n,
                    "verbatim_leaked": self.verbatim[kind],
                    "verbatim_rate": self.verbatim[kind] / n,
                    "token_leaked": self.token[kind],
                    "token_rate": self.token[kind] / n,
                    "fuzzy_leaked": self.fuzzy[kind],
                    "fuzzy_rate": self.fuzzy[kind] / n,
                    "readable": self.readable[kind],
                    "target": TARGETS.get(kind),
                    "ok": kind not in TARGETS or max(self.verbatim[kind], self.fuzzy[kind]) / n < TARGETS[kind],
                }
            )
        return out


def measure_text(records: list[dict], settings: Settings) -> Tally:
    from docsync import pii

    tally = Tally()
    for record in records:
        clean, _counts = pii.anonymize(record["full_text"], settings)
        tally.add(record["full_text"], record["spans"], record["full_text"], clean)
    return tally


# --- scanned PDFs -----------------------------------------------------------------------


def printable(text: str) -> str:
    """What Courier (a PDF core font, Latin-1 only) can print: other letters lose their accents."""
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            out.append(base or "?")
    return "".join(out)


def scanned_pdf(text: str, dpi: int = 300, skew: float = 0.0) -> bytes:
    """An image-only PDF of ``text`` (Courier 11 pt on Letter), like a page from a scanner."""
    import pypdfium2 as pdfium
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF(format="Letter")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Courier", "", 11)
    pdf.multi_cell(0, 6, text)
    doc = pdfium.PdfDocument(bytes(pdf.output()))
    try:
        page = doc[0]
        image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
        page.close()
    finally:
        doc.close()
    if skew:
        image = image.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    buffer = io.BytesIO()
    image.save(buffer, "PDF", resolution=float(dpi), quality=85)
    return buffer.getvalue()


def measure_scanned(records: list[dict], settings: Settings, skew: float = 0.0) -> Tally:
    from docsync import pii
    from docsync.parse import parse_document

    def ocr(record: dict) -> tuple[dict, str, list[str]]:
        text = printable(record["full_text"])
        spans = [s | {"entity_value": printable(s["entity_value"])} for s in record["spans"]]
        parsed = parse_document(scanned_pdf(text, settings.ocr.dpi, skew), "bench/scan.pdf", settings)
        assert parsed.ocr_pages == parsed.pages == 1, "the rendered PDF must be image-only"
        return {"text": text, "spans": spans}, parsed.text, [b.text for b in parsed.blocks]

    # Sequential on purpose: pdfium is not thread-safe (two threads rendering at once can
    # hang), and parse_document already OCRs pages in parallel.
    tally = Tally()
    for rendered, ocr_text, blocks in map(ocr, records):
        clean, _counts = pii.anonymize_many(blocks, settings)
        tally.add(rendered["text"], rendered["spans"], ocr_text, "\n\n".join(clean))
    return tally


# --- report -----------------------------------------------------------------------------


def table(rows: list[dict], scanned: bool = False) -> str:
    head = "| entity | values | verbatim leak | token leak | near-copy leak | target |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if scanned:
        head = "| entity | values | OCR read verbatim | verbatim leak | token leak | near-copy leak | target |"
        rule = "|---|---:|---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for r in rows:
        target = f"< {r['target']:.0%}" if r["target"] is not None else "-"
        flag = "" if r["ok"] else " MISSED"
        cells = [r["entity"], str(r["values"])]
        if scanned:
            cells.append(f"{r['readable']}/{r['values']}")
        cells += [
            f"{r['verbatim_leaked']} ({r['verbatim_rate']:.1%})",
            f"{r['token_leaked']} ({r['token_rate']:.1%})",
            f"{r['fuzzy_leaked']} ({r['fuzzy_rate']:.1%})",
            target + flag,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=0, help="text mode: N records of a covering sample (0 = all)")
    parser.add_argument("--scanned", type=int, default=60, help="records rendered as scanned PDFs (0 = skip)")
    parser.add_argument("--skew", type=float, default=0.0, help="rotate scans by this many degrees")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--show-leaks", action="store_true", help="print surviving values (synthetic data only)")
    parser.add_argument("--generated", choices=("tune", "test"),
                        help="measure records of bench.pii_heldout (names/phones from no gazetteer source) instead")
    args = parser.parse_args(argv)

    from docsync import pii
    from docsync.config import load_settings

    settings = load_settings()
    if args.generated:
        from bench.pii_heldout import generate

        records = generate(args.generated, args.limit or 600)
        args.scanned = 0
    else:
        records = load_records(args.data)
    sample = select(records, args.limit) if args.limit and not args.generated else records
    pii.get_analyzer()
    report: dict = {"records": len(sample), "entities": list(settings.pii.entities)}
    started = time.perf_counter()
    text = measure_text(sample, settings)
    report["text"] = text.rows()
    report["text_seconds"] = round(time.perf_counter() - started, 1)
    print(f"## Text: {len(sample)} records ({report['text_seconds']} s)\n")
    print(table(report["text"]))
    report["text_over_redaction"] = text.over_redaction
    print(f"\nover-redaction: {text.over_redaction:.1%} of the words outside labelled PII removed")
    ok = all(r["ok"] for r in report["text"])
    if args.show_leaks:
        for kind, value in text.leaks:
            print(f"  leaked {kind}: {value!r}")
    if args.scanned:
        scan_sample = select(records, args.scanned)
        started = time.perf_counter()
        scanned = measure_scanned(scan_sample, settings, args.skew)
        report["scanned"] = scanned.rows()
        report["scanned_records"] = len(scan_sample)
        report["scanned_seconds"] = round(time.perf_counter() - started, 1)
        print(f"\n## Scanned PDFs, OCR + anonymize: {len(scan_sample)} records ({report['scanned_seconds']} s)\n")
        print(table(report["scanned"], scanned=True))
        report["scanned_over_redaction"] = scanned.over_redaction
        print(f"\nover-redaction: {scanned.over_redaction:.1%} of the words outside labelled PII removed")
        ok = ok and all(r["ok"] for r in report["scanned"])
        if args.show_leaks:
            for kind, value in scanned.leaks:
                print(f"  leaked {kind}: {value!r}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print("\nall targets met" if ok else "\nsome targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
