"""bench.overredaction and bench.pii_heldout: over-redaction on real low-PII documents
(real Presidio + spaCy), and the generated held-out records are reproducible and disjoint."""

from __future__ import annotations

import pytest

from bench.overredaction import CORPUS, TARGET, blocks, compare, load_corpus, measure
from bench.pii_heldout import generate
from docsync.config import load_settings


def test_compare_counts_words_replaced_by_tags():
    result = compare("doc", ["Duty to File Documents", "Ask Ana Novak today"],
                     ["<PERSON> to File Documents", "Ask <PERSON> today"], allowed={"Novak"})
    assert result.words == 8 and result.removed == 2 and result.allowed == 1
    assert result.by_entity == {"PERSON": 2}


@pytest.mark.parametrize("name", ["apache_license_2", "joss_policies", "code_of_conduct"])
def test_real_documents_keep_their_words(name):
    corpus = load_corpus(CORPUS)
    assert len(corpus) >= 8 and all(len(blocks(t)) > 5 for t in corpus.values())
    (result,) = measure(load_settings(), {name: corpus[name]})
    assert result.words > 600
    assert result.share <= TARGET, result.spans


def test_generated_records_are_reproducible_and_disjoint():
    tune, test = generate("tune", 200), generate("test", 200)
    assert tune == generate("tune", 200)
    for record in tune + test:
        for span in record["spans"]:
            assert record["full_text"][span["start_position"] : span["end_position"]] == span["entity_value"]
    names = lambda records: {s["entity_value"] for r in records for s in r["spans"] if s["entity_type"] == "PERSON"}  # noqa: E731
    assert not names(tune) & names(test)
    with pytest.raises(ValueError):
        generate("dev")
