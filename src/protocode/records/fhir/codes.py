"""The code systems of FHIR codings, and the answer codes every mapping knows."""

from __future__ import annotations

from typing import Final

SYSTEMS: Final[dict[str, str]] = {
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "atc": "http://www.whocc.no/atc",
}
"""The terminologies of the data dictionary's ``codes:`` and their FHIR system URIs."""

# Other spellings of the same systems seen in FHIR data (HL7 OIDs; a trailing slash).
_ALIASES: Final[dict[str, str]] = {
    "urn:oid:2.16.840.1.113883.6.1": "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
    "http://www.whocc.no/atc/": "http://www.whocc.no/atc",
    "http://snomed.info/sct/": "http://snomed.info/sct",
}

Code = tuple[str, str]
"""A coding as matched: (system URI, code)."""


def system_key(system: str) -> str:
    """The canonical URI of a code system (OID and slash spellings folded)."""
    return _ALIASES.get(system, system)


# Answer codes every mapping knows: they give `code` items the value of the same name (when
# the item has it) and `boolean` items true or false.
_SNOMED, _V2_0136 = SYSTEMS["snomed"], "http://terminology.hl7.org/CodeSystem/v2-0136"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ANSWERS: Final[dict[Code, str]] = {
    (_SNOMED, "373066001"): "yes",
    (_SNOMED, "373067005"): "no",
    (_SNOMED, "10828004"): "positive",
    (_SNOMED, "260385009"): "negative",
    (_SNOMED, "52101004"): "present",
    (_SNOMED, "2667000"): "absent",
    (_V2_0136, "Y"): "yes",
    (_V2_0136, "N"): "no",
    (_INTERPRETATION, "POS"): "positive",
    (_INTERPRETATION, "NEG"): "negative",
    (_INTERPRETATION, "DET"): "positive",
    (_INTERPRETATION, "ND"): "negative",
}
TRUE_WORDS: Final = frozenset({"yes", "positive", "present"})
FALSE_WORDS: Final = frozenset({"no", "negative", "absent"})
