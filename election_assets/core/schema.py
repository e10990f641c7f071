"""Synthetic mode's input contract: one region's fields, their types and their valid ranges.

The raw-data Pandera schemas, the synthetic generator, the feature module and the API's request models are
all derived from ``INPUT_FIELDS``, so a range changes in one place only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CANDIDATE_A = "Candidate_A"
CANDIDATE_B = "Candidate_B"
LABELS: tuple[str, str] = (CANDIDATE_A, CANDIDATE_B)

REGION_ID = "region_id"
LABEL = "winner"


@dataclass(frozen=True)
class InputField:
    name: str
    kind: Literal["int", "float"]
    description: str
    minimum: float | None = None
    maximum: float | None = None
    # ``population`` must be strictly positive; every other bound is inclusive.
    exclusive_minimum: bool = False

    def violation(self, value: float) -> str | None:
        """Return why ``value`` is out of range, or None when it is valid."""
        if self.minimum is not None:
            if self.exclusive_minimum and not value > self.minimum:
                return f"must be > {self.minimum:g}"
            if not self.exclusive_minimum and not value >= self.minimum:
                return f"must be >= {self.minimum:g}"
        if self.maximum is not None and not value <= self.maximum:
            return f"must be <= {self.maximum:g}"
        return None

    @classmethod
    def share(cls, name: str, description: str) -> InputField:
        """A share of something: a float in [0, 1]."""
        return cls(name, "float", description, 0.0, 1.0)


def _signed(name: str, description: str) -> InputField:
    return InputField(name, "float", description, -1.0, 1.0)


INPUT_FIELDS: tuple[InputField, ...] = (
    # The most populous US county (Los Angeles) has about 10 million residents: five times that is not a region.
    InputField("population", "int", "Residents of the region", 0, 50_000_000, exclusive_minimum=True),
    InputField("median_age", "float", "Median age of residents, years", 16.0, 100.0),
    InputField("median_income", "float", "Median household income, USD", 0.0, 1_000_000.0, exclusive_minimum=True),
    InputField.share("education_rate", "Share of adults with a bachelor's degree or more"),
    InputField.share("urban_ratio", "Share of residents living in urban areas"),
    InputField.share("prev_election_turnout", "Turnout of the previous election, share of eligible voters"),
    _signed("prev_winner_margin", "Candidate A's margin in the previous election (A minus B, share of votes)"),
    InputField.share("voter_registration_rate", "Share of eligible residents registered to vote"),
    _signed("social_sentiment_score", "Net social-media sentiment towards Candidate A"),
    InputField.share("candidate_a_favorability", "Share of residents with a favourable view of Candidate A"),
    InputField.share("candidate_b_favorability", "Share of residents with a favourable view of Candidate B"),
    InputField.share("poll_candidate_a", "Poll share for Candidate A"),
    InputField.share("poll_candidate_b", "Poll share for Candidate B"),
    InputField.share("undecided_rate", "Poll share of undecided voters"),
)

INPUT_FIELD_NAMES: tuple[str, ...] = tuple(field.name for field in INPUT_FIELDS)
FIELDS_BY_NAME: dict[str, InputField] = {field.name: field for field in INPUT_FIELDS}
