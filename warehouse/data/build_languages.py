"""Regenerate ``languages.csv`` from URIEL+'s Glottolog snapshot.

Run by hand, never at import time::

    python warehouse/data/build_languages.py            # downloads the pinned wheel with pip
    python warehouse/data/build_languages.py --wheel urielplus-1.3.2-py3-none-any.whl

The URIEL+ version is pinned by ``URIELPLUS_VERSION`` in
``seqrob.warehouse.languages``; to move to a new release, change it there and
rerun this script. The wheel is read as a zip archive: urielplus is never
imported (importing it configures the root logger, and instantiating it writes
into its own package folder), so nothing is installed and nothing is written
except the CSV.

What is taken from where
------------------------
- ISO 639-3 -> Glottocode: URIEL+ ``dialects.csv`` ("Language Iso", "Language
  Glot"), completed by ``uriel_glottocode_map.csv`` for codes the first lacks.
- Lineage and Glottolog name: URIEL+ ``lang_fam_geo.csv``.
- ``family``: the first node of the lineage; a language with an empty lineage is
  an isolate and, as in Glottolog, is its own family ("Basque").
- ``genus``: the next node below the family, skipping "Classical Indo-European"
  (the Glottolog 5 node above Germanic, Italic, Balto-Slavic, Indo-Iranian ...);
  empty when the language sits directly under its family or is an isolate.
- ``iso639_1``, ``name`` and ``script``: Unicode CLDR and the IANA language
  subtag registry as shipped by ``langcodes``/``language_data``.
  Two historical languages get the script their texts are written in rather
  than CLDR's (``_SCRIPT_FIXES``: Ancient Greek Grek, not Cprt; Old Irish Latn,
  not Ogam).
- Languages in Glottolog's "Bookkeeping" pseudo-family (spurious or retired
  entries) are left out.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import langcodes
from langcodes import data_dicts

from seqrob.warehouse.languages import CATALOG_COLUMNS, MACROLANGUAGES, URIELPLUS_VERSION

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "languages.csv"
_CSV_DIR = "urielplus/database/urielplus_csvs/"
# Nodes skipped when picking the genus (see the module docstring).
_GENUS_SKIP = frozenset({"Classical Indo-European"})
# Pseudo-families that are not languages at all.
_DROP_FAMILIES = frozenset({"Bookkeeping"})
# CLDR gives these historical languages the script of their oldest inscriptions;
# their texts and treebanks (UD) are in the script below.
_SCRIPT_FIXES = {"grc": "Grek", "sga": "Latn"}


def _download(version: str, into: Path) -> Path:
    """Fetch the pinned urielplus wheel with pip (no dependencies, no install)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "-d", str(into), f"urielplus=={version}"],
        check=True,
    )
    wheels = sorted(into.glob(f"urielplus-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip did not produce a urielplus {version} wheel in {into}")
    return wheels[0]


def _read_csv(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    with archive.open(_CSV_DIR + name) as raw:
        # keep_default_na matters in pandas; with csv the ISO code "nan" stays a string anyway
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))


def _wheel_version(archive: zipfile.ZipFile) -> str:
    for name in archive.namelist():
        if name.endswith(".dist-info/METADATA"):
            for line in archive.read(name).decode("utf-8").splitlines():
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
    raise SystemExit("the wheel has no METADATA with a Version")


def _iso_to_glottocode(archive: zipfile.ZipFile, lineages: dict[str, dict[str, str]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for row in _read_csv(archive, "dialects.csv"):
        iso, glotto = row["Language Iso"].strip(), row["Language Glot"].strip()
        if re.fullmatch(r"[a-z]{3}", iso) and glotto in lineages:
            mapping.setdefault(iso, glotto)
    for row in _read_csv(archive, "uriel_glottocode_map.csv"):
        iso, glotto = row["iso_code"].strip(), row["glottocode"].strip()
        if re.fullmatch(r"[a-z]{3}", iso) and glotto in lineages:
            mapping.setdefault(iso, glotto)
    return mapping


def _split_lineage(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _family_genus(lineage: list[str], glottolog_name: str) -> tuple[str, str]:
    if not lineage:  # an isolate is its own family in Glottolog
        return glottolog_name, ""
    below = [node for node in lineage[1:] if node not in _GENUS_SKIP]
    return lineage[0], (below[0] if below else "")


def _main_member_of() -> dict[str, str]:
    """Individual language -> the macrolanguage it stands for (zho's cmn, ara's arb)."""
    return {individual: macro for macro, individual in MACROLANGUAGES.items()}


# ISO 639-1 codes that ISO withdrew; langcodes still maps them, the table must not.
_WITHDRAWN_ALPHA2 = frozenset({"in", "iw", "ji", "jw", "mo", "sh"})
_ALPHA2 = {
    three: two
    for two, three in data_dicts.LANGUAGE_ALPHA3.items()
    if re.fullmatch(r"[a-z]{2}", two) and two not in _WITHDRAWN_ALPHA2
}


def _alpha2(iso3: str) -> str:
    """The ISO 639-1 code of an ISO 639-3 code, or ''."""
    return _ALPHA2.get(iso3, "")


def _tag(iso3: str) -> str:
    """The shortest tag for a code, as CLDR keys it ('deu' -> 'de')."""
    return _alpha2(iso3) or iso3


def _name(iso3: str, glottolog_name: str) -> str:
    name = langcodes.Language.get(_tag(iso3), normalize=False).language_name("en")
    if name.startswith("Unknown language"):
        return glottolog_name
    return re.sub(r" \((individual language|macrolanguage)\)$", "", name)


def _script(iso3: str, macro: str | None) -> str:
    """Default script from CLDR likely subtags, else the IANA Suppress-Script."""
    if iso3 in _SCRIPT_FIXES:
        return _SCRIPT_FIXES[iso3]
    for code in filter(None, [_tag(iso3), macro and _tag(macro)]):
        likely = data_dicts.LIKELY_SUBTAGS.get(code)
        if likely:
            script = langcodes.Language.get(likely).script
            if script:
                return script
        if code in data_dicts.DEFAULT_SCRIPTS:
            return data_dicts.DEFAULT_SCRIPTS[code]
    return ""


def build(wheel: Path) -> list[dict[str, str]]:
    """Rows of languages.csv, sorted by ISO 639-3 code."""
    with zipfile.ZipFile(wheel) as archive:
        version = _wheel_version(archive)
        if version != URIELPLUS_VERSION:
            raise SystemExit(
                f"{wheel.name} is URIEL+ {version}, but seqrob.warehouse.languages pins "
                f"URIELPLUS_VERSION = {URIELPLUS_VERSION!r}; change one of them"
            )
        lineages = {row["language_id"]: row for row in _read_csv(archive, "lang_fam_geo.csv")}
        iso_map = _iso_to_glottocode(archive, lineages)

    main_of = _main_member_of()
    rows = []
    for iso3, glottocode in sorted(iso_map.items()):
        if iso3 in MACROLANGUAGES:  # resolved through its main member instead
            continue
        entry = lineages[glottocode]
        lineage = _split_lineage(entry["lineage"])
        family, genus = _family_genus(lineage, entry["language_name"].strip())
        if family in _DROP_FAMILIES:
            continue
        macro = main_of.get(iso3)
        rows.append({
            "iso639_3": iso3,
            "iso639_1": _alpha2(iso3) or (_alpha2(macro) if macro else ""),
            "name": _name(iso3, entry["language_name"].strip()),
            "family": family,
            "genus": genus,
            "glottocode": glottocode,
            "script": _script(iso3, macro),
        })
    missing = [individual for individual in MACROLANGUAGES.values()
               if individual not in {row["iso639_3"] for row in rows}]
    if missing:
        raise SystemExit(f"main members of macrolanguages missing from URIEL+: {missing}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="a local urielplus wheel (default: pip download it)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download(URIELPLUS_VERSION, Path(tmp))
        rows = build(wheel)
    with open(args.output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CATALOG_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    families = {row["family"] for row in rows}
    print(f"wrote {len(rows)} languages in {len(families)} families to {args.output}")


if __name__ == "__main__":
    main()
