"""Election night's prior: what the live updater believes before the first county reports.

For each county: the pre-election forecast of its Democratic two-party share (the real model's, as of the day before
the election; for a replayed year the walk-forward model trained on earlier elections only), the two-party votes it
is expected to cast (the previous election's, rescaled by turnout as counties report), and the standard deviation of
its own error. For the nation and each state: the national and state parts of the real model's error, and each
state's electoral votes.

The file is JSON with a manifest block (what it was built from, when, the libraries) and the SHA-256 of its
content, checked on load exactly like the model store checks a model: a damaged or edited prior is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from election_assets.core.manifest import NoiseParts, library_versions

PRIOR_FORMAT = 1


class PriorError(ValueError):
    """A prior file that is missing, damaged or not for the year asked."""


@dataclass(frozen=True)
class PriorManifest:
    year: int
    source: str  # which model made the county forecasts
    trained_through: int  # the last election that model learnt from
    created_at: str
    libraries: dict[str, str]


@dataclass(frozen=True)
class ElectionNightPrior:
    manifest: PriorManifest
    noise: NoiseParts  # national and state parts used as such; the county part is spread by size in county_sd
    electoral_votes: dict[str, int]
    county_fips: tuple[str, ...]
    state_po: tuple[str, ...]
    county_name: tuple[str, ...]
    expected_dem_share: np.ndarray
    expected_votes: np.ndarray  # two-party votes, the previous election's
    county_sd: np.ndarray
    # The realignment: county characteristics (standardized, one column each) whose effect on the swing is shared
    # nationwide and unknown before the night (education and size in 2016, for example), with its prior spread.
    covariate_names: tuple[str, ...]
    covariates: np.ndarray  # counties x covariates
    realignment_sd: np.ndarray  # one per covariate

    @property
    def year(self) -> int:
        return self.manifest.year

    def _content(self) -> dict[str, Any]:
        return {
            "noise": asdict(self.noise),
            "electoral_votes": dict(sorted(self.electoral_votes.items())),
            "counties": {
                "county_fips": list(self.county_fips),
                "state_po": list(self.state_po),
                "county_name": list(self.county_name),
                "expected_dem_share": [round(float(v), 8) for v in self.expected_dem_share],
                "expected_votes": [round(float(v), 3) for v in self.expected_votes],
                "county_sd": [round(float(v), 8) for v in self.county_sd],
                "covariates": [[round(float(v), 6) for v in row] for row in self.covariates],
            },
            "realignment": {
                "covariate_names": list(self.covariate_names),
                "sd": [round(float(v), 8) for v in self.realignment_sd],
            },
        }

    def write(self, path: Path) -> str:
        """Write atomically (a temporary file renamed over ``path``); returns the content's SHA-256."""
        content = self._content()
        digest = _digest(content)
        document = {"format": PRIOR_FORMAT, "manifest": asdict(self.manifest), "sha256": digest, **content}
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
        os.replace(staging, path)
        return digest

    @classmethod
    def read(cls, path: Path, year: int | None = None) -> ElectionNightPrior:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise PriorError(
                f"no election-night prior at {path}; materialize the election_night_prior asset for that year "
                "(make live-demo does it for a replayed year)"
            ) from error
        except (OSError, ValueError) as error:
            raise PriorError(f"cannot read the election-night prior {path}: {error}") from error
        if document.get("format") != PRIOR_FORMAT:
            raise PriorError(f"{path} has prior format {document.get('format')!r}, this code reads {PRIOR_FORMAT}")
        content = {
            key: document[key] for key in ("noise", "electoral_votes", "counties", "realignment") if key in document
        }
        if document.get("sha256") != _digest(content):
            raise PriorError(f"{path} does not match its recorded SHA-256: the file was damaged or edited")
        manifest = PriorManifest(**document["manifest"])
        if year is not None and manifest.year != year:
            raise PriorError(f"{path} is the prior of {manifest.year}, not {year}")
        counties = content["counties"]
        return cls(
            manifest=manifest,
            noise=NoiseParts(**content["noise"]),
            electoral_votes={state: int(votes) for state, votes in content["electoral_votes"].items()},
            county_fips=tuple(counties["county_fips"]),
            state_po=tuple(counties["state_po"]),
            county_name=tuple(counties["county_name"]),
            expected_dem_share=np.asarray(counties["expected_dem_share"], dtype=float),
            expected_votes=np.asarray(counties["expected_votes"], dtype=float),
            county_sd=np.asarray(counties["county_sd"], dtype=float),
            covariate_names=tuple(content["realignment"]["covariate_names"]),
            covariates=np.asarray(counties["covariates"], dtype=float).reshape(len(counties["county_fips"]), -1),
            realignment_sd=np.asarray(content["realignment"]["sd"], dtype=float),
        )


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def size_scaled_county_sd(
    county_sd: float, votes: np.ndarray, training_votes: np.ndarray, training_residuals: np.ndarray
) -> np.ndarray:
    """Each county's own error spread: ``county_sd`` overall, larger for small counties and smaller for big ones.

    A small county's share moves more from one election to the next than a big one's; how much more is the slope of
    log |residual| on log votes over the training years' counties (``training_residuals``: each county's swing
    relative to its state, ``training_votes`` its previous votes). The spreads are scaled so that their root mean
    square over the counties is ``county_sd``, the real model's county part.
    """
    usable = (training_votes > 0) & np.isfinite(training_residuals) & (training_residuals != 0)
    slope = float(np.polyfit(np.log(training_votes[usable]), np.log(np.abs(training_residuals[usable])), 1)[0])
    relative = np.exp(slope * (np.log(np.maximum(votes, 1.0)) - np.log(np.maximum(votes, 1.0)).mean()))
    return county_sd * relative / np.sqrt(np.mean(relative**2))


def new_manifest(year: int, source: str, trained_through: int) -> PriorManifest:
    return PriorManifest(
        year=int(year),
        source=source,
        trained_through=int(trained_through),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        libraries=library_versions("numpy", "pandas", "xgboost", "scikit-learn"),
    )


# The county characteristics a realignment may follow; all are known before the election.
REALIGNMENT_COVARIATES = ("bachelor_rate", "log_prev_votes", "rural_urban_code")


def _standardized(frame: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    values = frame[list(REALIGNMENT_COVARIATES)].to_numpy(dtype=float)
    known = reference[list(REALIGNMENT_COVARIATES)].to_numpy(dtype=float)
    mean, sd = np.nanmean(known, axis=0), np.nanstd(known, axis=0)
    return np.nan_to_num((values - mean) / np.where(sd > 0, sd, 1.0))  # a missing value: the average county


def realignment_spread(train: pd.DataFrame, residuals: pd.Series) -> np.ndarray:
    """How far the realignment went in the training elections: in each one, the weighted regression of the
    forecaster's county errors (``residuals``, walk-forward) on the standardized characteristics; the root mean square
    of the coefficients over the elections is the prior spread of each (the next election's are unknown)."""
    from election_assets.real.forecaster import relative_swing_weight

    coefficients = []
    for _, rows in train.loc[residuals.index].groupby("year"):
        design = np.column_stack([np.ones(len(rows)), _standardized(rows, train)])
        weight = np.sqrt(relative_swing_weight(rows))
        solution = np.linalg.lstsq(design * weight[:, None], residuals.loc[rows.index].to_numpy() * weight, rcond=None)
        coefficients.append(solution[0][1:])
    return np.sqrt(np.mean(np.square(coefficients), axis=0))


def build_prior(
    train: pd.DataFrame,
    target: pd.DataFrame,
    electoral_votes: dict[str, int],
    source: str,
    polls: pd.DataFrame,
    state_returns: pd.DataFrame,
) -> ElectionNightPrior:
    """The prior of the election in ``target`` (its feature rows, polls as of the day before), from a real-mode
    forecaster fitted on ``train`` (elections before it only) and the polls and state results of those elections
    (later years are not read)."""
    from election_assets.real.forecaster import fit_forecaster, relative_swing_target

    forecaster = fit_forecaster(train, polls, state_returns)
    noise = forecaster.noise(target)
    votes = target["prev_total_votes"].to_numpy(dtype=float)
    county_sd = size_scaled_county_sd(
        noise.county,
        votes,
        training_votes=train["prev_total_votes"].to_numpy(dtype=float),
        training_residuals=relative_swing_target(train).to_numpy(),
    )
    year = int(target["year"].iloc[0])
    return ElectionNightPrior(
        manifest=new_manifest(year, source, forecaster.trained_through),
        noise=NoiseParts(national=noise.national, state=noise.state, county=noise.county, source=noise.source),
        electoral_votes=electoral_votes,
        county_fips=tuple(target["county_fips"]),
        state_po=tuple(target["state_po"]),
        county_name=tuple(target["county_name"]),
        expected_dem_share=forecaster.predict_share(target),
        expected_votes=votes,
        county_sd=county_sd,
        covariate_names=REALIGNMENT_COVARIATES,
        covariates=_standardized(target, train),
        realignment_sd=realignment_spread(train, forecaster.variant.residuals.frame["residual"]),
    )
