"""Language metadata: a user's language code -> name, Glottolog family, genus, script.

seqrob ships one table, ``data/languages.csv``, extracted once from the Glottolog
lineages bundled with URIEL+ (see ``data/LANGUAGES.md`` and
``data/build_languages.py``). Nothing here downloads anything, imports URIEL+ or
writes files; the table is read on first use.

Codes are read with ``langcodes``: ISO 639-1 (``de``), ISO 639-3 (``deu``),
ISO 639-2/B (``ger``), BCP-47 tags (``zh-Hans``, ``pt-BR``, ``sr-Latn``) and
POSIX-style tags (``en_US``). A macrolanguage resolves to its main individual
language (``zh`` -> ``cmn``, ``ar`` -> ``arb``, ``fa`` -> ``pes``; see
:data:`MACROLANGUAGES`). A script subtag in the tag overrides the default script.

Families follow Glottolog's conventions: an isolate is its own family, named by
the language (Basque -> ``Basque``); creoles sit under their lexifier's family
(Haitian -> ``Indo-European``); sign languages, artificial languages, pidgins and
mixed languages get Glottolog's pseudo-families (``Sign Language``,
``Artificial Language``, ``Pidgin``, ``Mixed Language``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from seqrob.warehouse.errors import InputError

if TYPE_CHECKING:  # pandas is imported only when catalog() is called
    import pandas

__all__ = [
    "Language",
    "resolve",
    "catalog",
    "read_overrides",
    "CATALOG_COLUMNS",
    "MACROLANGUAGES",
    "OVERRIDE_COLUMNS",
    "SOURCE",
    "URIELPLUS_VERSION",
]

#: URIEL+ release the shipped table was extracted from (``data/build_languages.py`` checks it).
URIELPLUS_VERSION = "1.3.2"

#: ``Language.source`` of every language resolved from the shipped table.
SOURCE = f"glottolog (URIEL+ {URIELPLUS_VERSION})"

#: Columns of :func:`catalog` and of ``data/languages.csv``, in order.
CATALOG_COLUMNS = ("iso639_3", "iso639_1", "name", "family", "genus", "glottocode", "script")

#: Columns an override file may have; ``code`` and ``family`` are required.
OVERRIDE_COLUMNS = ("code", "family", "name", "genus", "script")

#: ISO 639-3 macrolanguage -> the individual language whose lineage stands for it
#: (the standard or most widely written member). Macrolanguages missing here
#: resolve only if Glottolog itself has a node for the code (``nor``, ``hbs``, ``aka``).
MACROLANGUAGES = {
    "ara": "arb",  # Arabic -> Standard Arabic
    "aym": "ayr",  # Aymara -> Central Aymara
    "aze": "azj",  # Azerbaijani -> North Azerbaijani
    "bik": "bcl",  # Bikol -> Central Bikol
    "bua": "bxr",  # Buriat -> Russia Buriat
    "chm": "mhr",  # Mari -> Eastern (Meadow) Mari
    "doi": "dgo",  # Dogri -> Dogri (individual language)
    "est": "ekk",  # Estonian -> Standard Estonian
    "fas": "pes",  # Persian -> Iranian Persian
    "grn": "gug",  # Guarani -> Paraguayan Guarani
    "iku": "ike",  # Inuktitut -> Eastern Canadian Inuktitut
    "kau": "knc",  # Kanuri -> Central Kanuri
    "kok": "gom",  # Konkani -> Goan Konkani
    "kom": "kpv",  # Komi -> Komi-Zyrian
    "kur": "kmr",  # Kurdish -> Northern Kurdish (Kurmanji)
    "lah": "pnb",  # Lahnda -> Western Panjabi
    "lav": "lvs",  # Latvian -> Standard Latvian
    "mlg": "plt",  # Malagasy -> Plateau Malagasy
    "mon": "khk",  # Mongolian -> Halh Mongolian
    "msa": "zsm",  # Malay -> Standard Malay
    "nep": "npi",  # Nepali -> Nepali (individual language)
    "ori": "ory",  # Oriya -> Odia
    "orm": "gaz",  # Oromo -> West Central Oromo
    "que": "quz",  # Quechua -> Cusco Quechua
    "sqi": "als",  # Albanian -> Tosk Albanian (standard Albanian is Tosk-based)
    "swa": "swh",  # Swahili -> Swahili (individual language)
    "uzb": "uzn",  # Uzbek -> Northern Uzbek
    "yid": "ydd",  # Yiddish -> Eastern Yiddish
    "zho": "cmn",  # Chinese -> Mandarin Chinese
}

_TABLE = Path(__file__).resolve().parent / "data" / "languages.csv"
_SCRIPT = re.compile(r"[A-Za-z]{4}")


@dataclass(frozen=True)
class Language:
    """What seqrob knows about one language code.

    Attributes
    ----------
    code
        The code exactly as the user gave it (``'zh-Hans'``).
    iso639_3
        ISO 639-3 code of the individual language (``'cmn'``).
    name
        English name (``'Mandarin Chinese'``).
    family
        Top-level Glottolog family (``'Sino-Tibetan'``); an isolate's own name.
    genus
        First Glottolog subgroup below the family (``'Sinitic'``), or None.
    script
        ISO 15924 script code (``'Hans'``), or None when unknown.
    source
        Where the family came from: :data:`SOURCE` for the shipped table,
        ``'override:<path>'`` for an override file, ``'file:<path>'`` when a
        caller takes it from a data file.
    """

    code: str
    iso639_3: str
    name: str
    family: str
    genus: str | None
    script: str | None
    source: str


@cache
def _table() -> dict[str, tuple[str | None, ...]]:
    """ISO 639-3 code -> catalog row (None for empty cells), read once."""
    with open(_TABLE, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if tuple(header) != CATALOG_COLUMNS:  # a packaging bug, not a user error
            raise RuntimeError(f"{_TABLE} has columns {header}, expected {list(CATALOG_COLUMNS)}")
        return {row[0]: tuple(cell or None for cell in row) for row in reader}


@cache
def _catalog() -> pandas.DataFrame:
    import pandas as pd

    # keep_default_na=False: the ISO 639-3 code of Min Nan Chinese is "nan".
    return pd.read_csv(_TABLE, dtype=str, keep_default_na=False, na_values=[""])


def catalog() -> pandas.DataFrame:
    """The shipped language table.

    Returns
    -------
    pandas.DataFrame
        One row per ISO 639-3 code, sorted by it, with string columns:

        - ``iso639_3``: ISO 639-3 code.
        - ``iso639_1``: ISO 639-1 code; for the main member of a macrolanguage,
          the macrolanguage's (``cmn`` has ``zh``). Missing when there is none.
        - ``name``: English name (CLDR or the IANA subtag registry; Glottolog's
          name where neither has one).
        - ``family``: top-level Glottolog family; an isolate's own name.
        - ``genus``: first Glottolog subgroup below the family, skipping
          "Classical Indo-European"; missing for isolates and for languages
          directly under their family.
        - ``glottocode``: the Glottolog languoid the lineage belongs to.
        - ``script``: default ISO 15924 script from CLDR likely subtags; missing
          when CLDR has none.

    Notes
    -----
    Macrolanguage codes (``zho``, ``ara``) have no row; :func:`resolve` maps
    them to their main member first. The frame is a copy: changing it does not
    change what :func:`resolve` returns.

    Examples
    --------
    >>> table = catalog()
    >>> table.loc[table.iso639_3 == "deu", ["name", "family", "genus"]].values.tolist()
    [['German', 'Indo-European', 'Germanic']]
    """
    return _catalog().copy()


def _parse(text: str):
    """(raw, normalized) langcodes.Language for a tag, or None when it is not one."""
    import langcodes

    try:
        raw = langcodes.Language.get(text, normalize=False)
        normalized = langcodes.Language.get(text)
    except (ValueError, LookupError):  # LanguageTagError is a ValueError
        return None
    if raw.language is None and normalized.language is None:
        return None
    return raw, normalized


def _iso639_3(subtag: str | None) -> str | None:
    """ISO 639-3 code of a language subtag, macrolanguages replaced by their main member."""
    if not subtag:
        return None
    subtag = subtag.lower()
    if len(subtag) == 2:
        import langcodes

        try:
            subtag = langcodes.Language.get(subtag, normalize=False).to_alpha3()
        except LookupError:
            return None
    return MACROLANGUAGES.get(subtag, subtag)


def _region_script(language: str | None, territory: str | None) -> str | None:
    """CLDR's likely script for a language in a region (zh-TW -> Hant), if CLDR has one."""
    if not language or not territory:
        return None
    try:
        from langcodes.data_dicts import LIKELY_SUBTAGS
    except ImportError:  # not part of langcodes' documented API; degrade gracefully
        return None
    likely = LIKELY_SUBTAGS.get(f"{language}-{territory}")
    if likely is None:
        return None
    import langcodes

    return langcodes.Language.get(likely).script


def resolve(code: str) -> Language | None:
    """Resolve a user's language code.

    Parameters
    ----------
    code
        ISO 639-1 (``'de'``), ISO 639-3 (``'deu'``), ISO 639-2/B (``'ger'``) or
        a BCP-47 tag (``'zh-Hans'``, ``'pt-BR'``, ``'sr-Latn'``; ``'en_US'`` is
        read as ``'en-US'``). Case and surrounding spaces do not matter.

    Returns
    -------
    Language or None
        None when the code is not a language tag or seqrob has no lineage for it
        (``'xx'``, ``'qqq'``, ``''``, ``'und'``).

    Notes
    -----
    The language subtag is looked up as given first and, when that fails, as
    ``langcodes`` normalizes it (deprecated and bibliographic codes such as
    ``iw`` and ``ger``). A macrolanguage is replaced by its main member
    (:data:`MACROLANGUAGES`). The script is the tag's script subtag if it has
    one, else CLDR's likely script for the tag's region (``zh-TW`` -> ``Hant``),
    else the language's default script. Results are cached per distinct code.

    Examples
    --------
    >>> lang = resolve("zh-Hant")
    >>> lang.iso639_3, lang.family, lang.genus, lang.script
    ('cmn', 'Sino-Tibetan', 'Sinitic', 'Hant')
    >>> resolve("eu").family
    'Basque'
    >>> resolve("xx") is None
    True
    """
    if not isinstance(code, str):
        return None
    return _resolve(code)


@lru_cache(maxsize=65536)
def _resolve(code: str) -> Language | None:
    text = code.strip().replace("_", "-")
    if not text:
        return None
    parsed = _parse(text)
    if parsed is None:
        return None
    raw, normalized = parsed
    table = _table()
    row = None
    for subtag in dict.fromkeys([raw.language, normalized.language]):
        iso = _iso639_3(subtag)
        if iso in table:
            row = table[iso]
            break
    if row is None:
        return None
    iso639_3, _, name, family, genus, _, default_script = row
    script = (
        raw.script
        or normalized.script
        or _region_script(normalized.language, normalized.territory)
        or default_script
    )
    return Language(
        code=code,
        iso639_3=iso639_3,
        name=name or iso639_3,
        family=family,
        genus=genus,
        script=script,
        source=SOURCE,
    )


def read_overrides(path) -> dict[str, Language]:
    """Read a user's language override file.

    Parameters
    ----------
    path
        A CSV file (UTF-8, header row) with columns ``code`` and ``family``
        and, optionally, ``name``, ``genus`` and ``script`` (ISO 15924, e.g.
        ``Latn``). Column names are case-insensitive; empty optional cells mean
        "not given".

    Returns
    -------
    dict of str to Language
        Keyed by the code as written in the file (surrounding spaces removed),
        each with ``source='override:<path>'``. ``iso639_3`` and a missing
        ``name`` or ``script`` are filled from seqrob's table when it knows the
        code; ``genus`` is never filled in, since the shipped genus belongs to
        the shipped family. An unknown code keeps itself as ``iso639_3`` and
        ``name``.

    Raises
    ------
    seqrob.warehouse.errors.InputError
        When the file is missing or unreadable, lacks ``code`` or ``family``, has
        an unknown column, an empty code or family, a malformed script, or gives
        one code twice.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "families.csv"
    >>> _ = path.write_text("code,family\\nht,Creole\\n")
    >>> read_overrides(path)["ht"].family
    'Creole'
    """
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise InputError("file not found", file=where,
                         fix="check the path of the language override file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot be read ({error})", file=where,
                         fix="give a UTF-8 CSV file with columns code,family") from None
    except csv.Error as error:
        raise InputError(f"is not valid CSV ({error})", file=where,
                         fix="give a CSV file with columns code,family") from None

    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError("is empty", file=where, fix="add a header row with columns code,family")
    header = [cell.strip().lower() for cell in rows[0]]
    while header and not header[-1]:  # trailing empty columns, as spreadsheets export them
        header.pop()
    for name in header:
        if name not in OVERRIDE_COLUMNS:
            problem = f"unknown column '{name}'" if name else "a column has no name"
            raise InputError(problem, file=where, column=name or None,
                             fix=f"use only the columns {', '.join(OVERRIDE_COLUMNS)}")
    for required in ("code", "family"):
        if required not in header:
            raise InputError(f"no '{required}' column", file=where, column=required,
                             fix=f"add a '{required}' column (required: code, family; "
                                 "optional: name, genus, script)")
    if len(set(header)) != len(header):
        duplicate = next(name for name in header if header.count(name) > 1)
        raise InputError(f"column '{duplicate}' appears twice", file=where, column=duplicate,
                         fix="keep one of them")

    source = f"override:{where}"
    result: dict[str, Language] = {}
    for number, cells in enumerate(rows[1:], start=1):
        if any(cell.strip() for cell in cells[len(header):]):
            raise InputError(f"has {len(cells)} cells but the header has {len(header)} columns",
                             file=where, row=number, fix="quote cells that contain commas")
        record = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        code, family = record["code"], record["family"]
        if not code:
            raise InputError("empty code", file=where, row=number, column="code",
                             fix="give a language code such as 'de' or 'zh-Hans'")
        if not family:
            raise InputError(f"empty family for '{code}'", file=where, row=number, column="family",
                             fix="give a family name, or remove the row to keep seqrob's family")
        script = record.get("script") or None
        if script is not None and not _SCRIPT.fullmatch(script):
            raise InputError(f"'{script}' is not an ISO 15924 script code", file=where, row=number,
                             column="script", fix="use a four-letter code such as Latn, Cyrl or Hans")
        known = resolve(code)
        language = Language(
            code=code,
            iso639_3=known.iso639_3 if known else code,
            name=record.get("name") or (known.name if known else code),
            family=family,
            genus=record.get("genus") or None,
            script=script.title() if script else (known.script if known else None),
            source=source,
        )
        if code in result and result[code] != language:
            raise InputError(f"code '{code}' is given twice with different values", file=where,
                             row=number, column="code", fix="keep one row per code")
        result[code] = language
    return result
