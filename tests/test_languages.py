"""Tests for seqrob.warehouse.languages (language codes -> Glottolog family, genus, script)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from seqrob.warehouse import languages
from seqrob.warehouse.errors import InputError
from seqrob.warehouse.languages import (
    CATALOG_COLUMNS,
    MACROLANGUAGES,
    SOURCE,
    Language,
    catalog,
    read_overrides,
    resolve,
)

DATA = Path(__file__).parent / "data"

# The 40 XTREME languages (Hu et al. 2020, table of languages) and the 10 that
# XTREME-R adds (Ruder et al. 2021), with the top-level Glottolog family each
# should get. Written from Glottolog's classification, not from seqrob's table.
XTREME = {
    "af": "Indo-European", "ar": "Afro-Asiatic", "bg": "Indo-European",
    "bn": "Indo-European", "de": "Indo-European", "el": "Indo-European",
    "en": "Indo-European", "es": "Indo-European", "et": "Uralic",
    "eu": "Basque", "fa": "Indo-European", "fi": "Uralic",
    "fr": "Indo-European", "he": "Afro-Asiatic", "hi": "Indo-European",
    "hu": "Uralic", "id": "Austronesian", "it": "Indo-European",
    "ja": "Japonic", "jv": "Austronesian", "ka": "Kartvelian",
    "kk": "Turkic", "ko": "Koreanic", "ml": "Dravidian",
    "mr": "Indo-European", "ms": "Austronesian", "my": "Sino-Tibetan",
    "nl": "Indo-European", "pt": "Indo-European", "ru": "Indo-European",
    "sw": "Atlantic-Congo", "ta": "Dravidian", "te": "Dravidian",
    "th": "Tai-Kadai", "tl": "Austronesian", "tr": "Turkic",
    "ur": "Indo-European", "vi": "Austroasiatic", "yo": "Atlantic-Congo",
    "zh": "Sino-Tibetan",
}
XTREME_R_EXTRA = {
    "az": "Turkic", "gu": "Indo-European",
    "ht": "Indo-European",  # Glottolog 5 classifies creoles under their lexifier (French)
    "lt": "Indo-European", "pa": "Indo-European", "pl": "Indo-European",
    "qu": "Quechuan", "ro": "Indo-European", "uk": "Indo-European",
    "wo": "Atlantic-Congo",
}
XTREME_R = {**XTREME, **XTREME_R_EXTRA}


def _ud_codes() -> list[str]:
    lines = (DATA / "ud_languages.txt").read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def test_benchmark_lists_have_the_published_sizes():
    assert len(XTREME) == 40
    assert len(XTREME_R) == 50


@pytest.mark.parametrize("code, family", sorted(XTREME_R.items()))
def test_xtreme_and_xtreme_r_languages_get_their_glottolog_family(code, family):
    language = resolve(code)
    assert language is not None, code
    assert language.family == family
    assert language.source == SOURCE


@pytest.mark.parametrize("code, family", sorted(XTREME_R.items()))
def test_iso639_3_codes_of_benchmark_languages_agree_with_iso639_1(code, family):
    by_two = resolve(code)
    by_three = resolve(by_two.iso639_3)
    assert by_three.family == family
    assert by_three.iso639_3 == by_two.iso639_3


def test_universal_dependencies_coverage():
    codes = _ud_codes()
    assert len(codes) >= 140 and len(set(codes)) == len(codes)
    missing = [code for code in codes if resolve(code) is None]
    covered = 1 - len(missing) / len(codes)
    print(f"UD coverage: {len(codes) - len(missing)}/{len(codes)} = {covered:.1%}; missing: {missing}")
    assert covered >= 0.95, missing


@pytest.mark.parametrize(
    "code, iso639_3, family",
    [
        ("zh", "cmn", "Sino-Tibetan"), ("zho", "cmn", "Sino-Tibetan"), ("chi", "cmn", "Sino-Tibetan"),
        ("ar", "arb", "Afro-Asiatic"), ("ara", "arb", "Afro-Asiatic"),
        ("fa", "pes", "Indo-European"), ("fas", "pes", "Indo-European"),
        ("ms", "zsm", "Austronesian"), ("msa", "zsm", "Austronesian"),
        ("sw", "swh", "Atlantic-Congo"), ("swa", "swh", "Atlantic-Congo"),
        ("et", "ekk", "Uralic"), ("est", "ekk", "Uralic"),
        ("lv", "lvs", "Indo-European"), ("lav", "lvs", "Indo-European"),
        ("qu", "quz", "Quechuan"), ("que", "quz", "Quechuan"),
        ("uz", "uzn", "Turkic"), ("mn", "khk", "Mongolic-Khitan"),
        ("sq", "als", "Indo-European"), ("no", "nor", "Indo-European"),
    ],
)
def test_macrolanguages_resolve_through_their_main_member(code, iso639_3, family):
    language = resolve(code)
    assert (language.iso639_3, language.family) == (iso639_3, family)


def test_every_macrolanguage_target_is_in_the_table():
    table = set(catalog().iso639_3)
    assert set(MACROLANGUAGES.values()) <= table
    assert not set(MACROLANGUAGES) & table  # macro codes never have rows of their own


@pytest.mark.parametrize(
    "code, iso639_3, script",
    [
        ("zh-Hans", "cmn", "Hans"),
        ("zh-Hant", "cmn", "Hant"),
        ("zh-TW", "cmn", "Hant"),  # region implies the script (CLDR likely subtags)
        ("pt-BR", "por", "Latn"),
        ("sr", "srp", "Cyrl"),
        ("sr-Latn", "srp", "Latn"),
        ("en_US", "eng", "Latn"),
        ("EN-us", "eng", "Latn"),
        (" de ", "deu", "Latn"),
        ("ger", "deu", "Latn"),  # ISO 639-2/B
        ("iw", "heb", "Hebr"),  # withdrawn ISO 639-1 code
        ("uz-Arab", "uzn", "Arab"),
        ("pa-PK", "pan", "Arab"),
        ("ja", "jpn", "Jpan"),
        ("tl", "tgl", "Latn"),  # not rewritten to Filipino as CLDR would
    ],
)
def test_bcp47_tags(code, iso639_3, script):
    language = resolve(code)
    assert language.code == code  # exactly as given
    assert (language.iso639_3, language.script) == (iso639_3, script)


@pytest.mark.parametrize("code", ["xx", "qqq", "", "   ", "und", "x-foo", "123", "not a tag", "otk"])
def test_unknown_codes_resolve_to_none(code):
    assert resolve(code) is None


def test_non_strings_resolve_to_none():
    assert resolve(None) is None
    assert resolve(float("nan")) is None


def test_isolates_are_their_own_family_without_genus():
    basque = resolve("eu")
    assert (basque.family, basque.genus, basque.name) == ("Basque", None, "Basque")


def test_genus_is_the_level_below_the_family():
    assert resolve("de").genus == "Germanic"
    assert resolve("es").genus == "Italic"
    assert resolve("ru").genus == "Balto-Slavic"
    assert resolve("hi").genus == "Indo-Iranian"
    assert resolve("zh").genus == "Sinitic"
    assert resolve("ko").genus is None  # directly under Koreanic


def test_resolve_is_cached_and_returns_a_frozen_language():
    first = resolve("de-AT")
    assert resolve("de-AT") is first
    with pytest.raises(AttributeError):
        first.family = "Uralic"


def test_catalog_columns_and_keys():
    table = catalog()
    assert tuple(table.columns) == CATALOG_COLUMNS
    assert table.iso639_3.is_unique and table.iso639_3.notna().all()
    assert table.family.notna().all() and table.glottocode.notna().all()
    assert "Bookkeeping" not in set(table.family)
    assert len(table) > 7000
    assert "nan" in set(table.iso639_3)  # Min Nan Chinese is not a missing value
    row = table.set_index("iso639_3").loc["cmn"]
    assert (row.iso639_1, row.family, row.genus, row.script) == ("zh", "Sino-Tibetan", "Sinitic", "Hans")


def test_catalog_returns_a_copy():
    table = catalog()
    table.loc[:, "family"] = "changed"
    assert resolve("fi").family == "Uralic"
    assert catalog().family.iloc[0] != "changed"


def test_docstring_examples():
    result = doctest.testmod(languages, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --- override files -------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "families.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_overrides(tmp_path):
    path = _write(
        tmp_path,
        "\ufeffCode, Family ,name,genus,script\n"
        "ht,Creole,Haitian,French-based,\n"
        "syn-a,Synthetic,Synthetic A,,latn\n"
        "\n"
        "zh-Hant,Sinitic family,,,\n",
    )
    overrides = read_overrides(path)
    assert list(overrides) == ["ht", "syn-a", "zh-Hant"]
    source = f"override:{path}"
    assert overrides["ht"] == Language("ht", "hat", "Haitian", "Creole", "French-based", "Latn", source)
    assert overrides["syn-a"] == Language("syn-a", "syn-a", "Synthetic A", "Synthetic", None, "Latn", source)
    # unknown fields come from seqrob's table, except the genus, which belongs to the shipped family
    assert overrides["zh-Hant"] == Language(
        "zh-Hant", "cmn", "Mandarin Chinese", "Sinitic family", None, "Hant", source
    )


def test_read_overrides_needs_a_family_column(tmp_path):
    path = _write(tmp_path, "code,name\nde,German\n")
    with pytest.raises(InputError) as raised:
        read_overrides(path)
    error = raised.value
    assert error.column == "family" and error.file == str(path)
    assert "family" in str(error) and error.fix


@pytest.mark.parametrize(
    "text, row, column",
    [
        ("family\nUralic\n", None, "code"),
        ("code,family,famliy\nfi,Uralic,x\n", None, "famliy"),
        ("code,family,code\nfi,Uralic,fi\n", None, "code"),
        ("code,family\nfi,Uralic\net,\n", 2, "family"),
        ("code,family\n,Uralic\n", 1, "code"),
        ("code,family,script\nfi,Uralic,Latin\n", 1, "script"),
        ("code,family\nfi,Uralic\nfi,Finnic\n", 2, "code"),
        ("code,family\nfi,Uralic,extra\n", 1, None),
        ("code,,family\nfi,x,Uralic\n", None, None),
        ("", None, None),
    ],
)
def test_read_overrides_rejects_bad_files(tmp_path, text, row, column):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as raised:
        read_overrides(path)
    assert (raised.value.row, raised.value.column) == (row, column)
    assert raised.value.fix


def test_read_overrides_allows_repeated_identical_rows_and_empty_bodies(tmp_path):
    assert read_overrides(_write(tmp_path, "code,family\n")) == {}
    repeated = read_overrides(_write(tmp_path, "code,family\nfi,Uralic\nfi,Uralic\n", "twice.csv"))
    assert list(repeated) == ["fi"]


def test_read_overrides_ignores_trailing_empty_columns(tmp_path):
    path = _write(tmp_path, "code,family,,\nfi,Uralic,,\n")
    assert read_overrides(path)["fi"].family == "Uralic"


def test_read_overrides_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_overrides(tmp_path / "nope.csv")
