"""Curation accuracy with the default config, on the reference sets of ../shared/corpora, as
scripts/eval_curation.py measures it (deterministic counts; CURATION.md holds the table). Each
assertion is a target with a small margin below what the defaults measure."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT, corpus

pytestmark = [pytest.mark.corpora, pytest.mark.slow]
sys.path.insert(0, str(ROOT / "scripts"))

LANGS = ("de", "en", "es", "fr", "id", "it", "ja", "pt", "zh-cn", "zh-tw")


@pytest.fixture(scope="module")
def chain():
    import eval_curation

    return eval_curation.Chain()


@pytest.fixture(scope="module")
def corpora():
    return corpus()


def test_debian_reference_is_kept_in_every_language(chain, corpora):
    import eval_curation as ev

    shares = {}
    for lang in LANGS:
        f = ev.run_set(chain, ev.reference_sets(corpora)[f"debian-reference/{lang}"]).figures()
        assert f["docs"] == 15
        assert f["doc_share"] >= 0.9 and f["char_share"] >= 0.95, (lang, f)
        shares[lang] = f["doc_share"]
    assert all(abs(share - shares["en"]) <= 0.1 for share in shares.values()), shares


def test_python_docs_kept_and_not_shredded(chain, corpora):
    import eval_curation as ev

    root = ev.reference_sets(corpora)["python-docs"][0]
    outcome = ev.run_set(chain, [root])
    f = outcome.figures()
    # 442 of 530 pages and 92.4% of the characters; the rest: 34 index and navigation pages, 35
    # chapter landing pages of a sentence or three, 7 stubs, 12 reference pages (CURATION.md)
    assert f["doc_share"] >= 0.82 and f["char_share"] >= 0.91, f
    mid = ev.mid_sentence(outcome, root)
    assert mid["lines"] > 10_000 and mid["share"] <= 0.02, mid


def test_academic_text_is_kept(chain, corpora):
    import eval_curation as ev

    sets = ev.reference_sets(corpora)
    openlogic = ev.run_set(chain, sets["openlogic"]).figures()
    assert openlogic["doc_share"] >= 0.9 and openlogic["char_share"] >= 0.95, openlogic
    arxiv = ev.run_set(chain, sets["arxiv"]).figures()
    assert arxiv["docs"] == 5 and arxiv["kept_docs"] == 5


def test_dclm_human_labels(chain, corpora):
    import eval_curation as ev

    d = ev.dclm(chain, corpora)
    assert d["good"] == 152 and d["bad"] == 129
    assert d["good_kept_share"] >= 0.9, d  # 138 of 152
    assert d["bad_removed_share"] >= 0.65, d  # 89 of 129 (the target, 0.75, is not met: CURATION.md)


def test_paragraphs_stay_whole_on_html_gold(chain, corpora):
    import eval_curation as ev

    i = ev.integrity(chain, corpora)
    assert i["paragraphs"] > 6000 and i["share"] >= 0.97, i


def test_code_language_on_linguist(chain, corpora):
    import eval_curation as ev

    c = ev.code_languages(chain, corpora)
    assert c["files"] > 900 and c["share"] >= 0.95, c
