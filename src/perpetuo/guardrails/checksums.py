"""Check-digit and format rules that turn pattern matches into confident findings.

Each function takes the candidate with separators already removed. The algorithms are the
published ones (ISO/IEC 7812 Luhn, ISO 13616 IBAN mod-97, Verhoeff's dihedral-group code as
UIDAI uses it for Aadhaar, the SSA's rules for SSN areas and groups, the Income Tax
Department's PAN layout); python-stdnum implements the same but is LGPL and far larger.
"""

from __future__ import annotations

import re


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# Card numbers are issued under these prefixes (IIN ranges of the networks in wide use):
# Visa 4; Mastercard 51-55 and 2221-2720; Amex 34, 37; Discover 6011, 644-649, 65;
# JCB 3528-3589; Diners 300-305, 36, 38; UnionPay 62; Maestro 50, 56-58, 63, 67.
_CARD_PREFIX = re.compile(r"^(?:4|5[0-8]|2[2-7]|3[0478]|35|6[0-7])")


def card_number_valid(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits)


# IBAN length per country (ISO 13616 registry): a checksum alone would accept any length.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(compact: str) -> bool:
    """`compact`: upper-case, no spaces. Country length, then mod-97 of the rearranged number."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 8, 7, 6, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    check = 0
    for index, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][ord(char) - 48]]
    return check == 0


def aadhaar_valid(digits: str) -> bool:
    """12 digits, not starting with 0 or 1 (UIDAI never issues those), Verhoeff check digit;
    a palindrome is rejected as UIDAI does."""
    return (
        len(digits) == 12
        and digits[0] not in "01"
        and digits != digits[::-1]
        and verhoeff_valid(digits)
    )


# Numbers the SSA invalidated after they were published (advertising, examples).
_RETIRED_SSNS = frozenset({"078051120", "219099999", "123456789"})


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """Never issued: area 000, 666 or 900-999; group 00; serial 0000."""
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
        and area + group + serial not in _RETIRED_SSNS
    )


# PAN: 3 letters, the holder type (P person, C company, H HUF, F firm, A AOP, T trust,
# B BOI, L local authority, J artificial juridical person, G government), the initial of the
# surname or name, 4 digits, a check letter (its algorithm is not published).
_PAN = re.compile(r"^[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z]$")


def pan_valid(text: str) -> bool:
    return bool(_PAN.match(text)) and text[5:9] != "0000"
