"""Domain errors: why one document could not be indexed, and the exception that carries it.

Every stage that can reject a single document raises a :class:`DocumentError` (or a
subclass) with a :class:`Failure`; the process step turns it into a quarantine entry and
goes on with the next document. Errors that are not about one document (a source outage,
a mass deletion) are not DocumentErrors: they stop the run before anything changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Stage(StrEnum):
    """Where a document failed (the quarantine's ``stage`` column)."""

    READ = "read"  # the source could not deliver the bytes (transient: retried automatically)
    SOURCE = "source"  # the source's own metadata of the document is invalid (e.g. a manifest entry)
    ACCESS = "access"  # access metadata missing, unknown or untrusted: never indexed
    DETECT = "detect"  # type or size not accepted
    LIMITS = "limits"  # a resource limit (pixels, memory, time budget) was hit
    PARSE = "parse"  # bytes could not be turned into text
    OCR = "ocr"  # scanned pages could not be read well enough
    PII = "pii"  # personal data survived anonymization
    VALIDATE = "validate"  # a document-level expectation failed
    CHUNK = "chunk"  # a chunk-level expectation failed
    EMBED = "embed"
    INDEX = "index"  # the state store or Qdrant refused this document
    TIMEOUT = "timeout"  # the per-document deadline passed


@dataclass(frozen=True)
class Failure:
    """Why one document could not be indexed."""

    stage: str  # a Stage value
    reason: str  # one line for a person: what failed, on which document, and what to do
    error: str = ""  # technical detail (exception type and message; never document text)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", str(self.stage))  # a Stage member is stored as its plain value

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict) -> Failure:
        return cls(stage=value["stage"], reason=value["reason"], error=value.get("error", ""))


class DocumentError(Exception):
    """One document cannot be indexed; carries the quarantine :class:`Failure`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure

    @classmethod
    def at(cls, stage: str, reason: str, error: str = "") -> DocumentError:
        return cls(Failure(str(stage), reason, error))


class AccessUnresolved(DocumentError, ValueError):
    """The access metadata of one document cannot be determined, or is of a shape docsync
    does not know: the document is quarantined at stage ``access`` (fail closed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(Failure(Stage.ACCESS, f"{reason}. Fix the document's permissions or ACL sidecar."))
        self.detail = reason

    def __str__(self) -> str:  # the plain cause, as sources word it
        return self.detail


class DocumentTimeout(DocumentError, TimeoutError):
    """A document took longer than its deadline."""

    def __init__(self, message: str) -> None:
        DocumentError.__init__(self, Failure(Stage.TIMEOUT, message))
