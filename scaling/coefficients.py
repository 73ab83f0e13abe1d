"""Coefficient sets of the loss law L(N, D) = E + A / N**alpha + B / D**beta.

N is parameters, D is training tokens, L is pre-training loss (nats/token). Named sets are
data: ``chinchilla`` (Hoffmann et al. 2022, with alpha/beta as the paper uses them), the
paper's Table 1 fits on its 47 runs and ``muennighoff2023`` (the C4 fit under Muennighoff et al.'s
data-constrained law, docs/data-constrained.md); fitted sets are read from ``beyond fit --json`` output.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from scaling.errors import InputError


@dataclass(frozen=True)
class LawCoefficients:
    """A, B, E (loss units), alpha, beta (dimensionless exponents) of the Chinchilla law."""

    A: float
    B: float
    E: float
    alpha: float
    beta: float
    name: str = "custom"

    def __post_init__(self) -> None:
        for key in ("A", "B", "E", "alpha", "beta"):
            value = getattr(self, key)
            # E may be 0: a fit whose irreducible-loss term vanished (e -> -inf) is still a valid law
            floor_ok = key == "E" and value == 0
            if not (isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 or floor_ok)):
                raise InputError(f"coefficient {key} must be a positive finite number, got {value!r}")

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


NAMED_SETS: dict[str, LawCoefficients] = {
    "chinchilla": LawCoefficients(A=406.4, B=410.7, E=1.69, alpha=0.336, beta=0.283, name="chinchilla"),
    # The paper's Table 1 (Sardana et al. 2024), fits on its own runs by tokens/param subset.
    "sardana-le100": LawCoefficients(A=7.199, B=25.97, E=0.17, alpha=0.08, beta=0.13, name="sardana-le100"),
    "sardana-le250": LawCoefficients(A=14.23, B=39.54, E=0.98, alpha=0.13, beta=0.16, name="sardana-le250"),
    "sardana-le500": LawCoefficients(A=17.07, B=35.80, E=0.95, alpha=0.13, beta=0.16, name="sardana-le500"),
    "sardana-all": LawCoefficients(A=33.66, B=138.9, E=1.45, alpha=0.18, beta=0.24, name="sardana-all"),
    # Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models", arXiv:2305.16264), App. "C4
    # Scaling Coefficients": fitted in log space on C4 (GPT-2 tokenizer) with alpha tied to beta,
    # "a=6.255414, b=7.3049974, e=0.6254804, alpha=beta=0.3526596" (A = e^a, B = e^b, E = e^e); the
    # base law of their data-constrained law, whose R_D*, R_N* are in scaling/data_constrained.py.
    "muennighoff2023": LawCoefficients(A=math.exp(6.255414), B=math.exp(7.3049974), E=math.exp(0.6254804),
                                       alpha=0.3526596, beta=0.3526596, name="muennighoff2023"),
}


def load_coefficients(spec: str | None) -> LawCoefficients:
    """A named set (``chinchilla``, ``sardana-all``, ...) or the path of a ``beyond fit --json`` file."""
    if spec is None:
        return NAMED_SETS["chinchilla"]
    if spec in NAMED_SETS:
        return NAMED_SETS[spec]
    path = Path(spec)
    if not path.is_file():
        names = ", ".join(NAMED_SETS)
        raise InputError(f"coefficients {spec!r}: no such file and not a named set ({names})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"coefficients file {path}: not valid JSON ({exc})") from None
    return coefficients_from_mapping(data, source=str(path))


def coefficients_from_mapping(data: object, source: str) -> LawCoefficients:
    """Read A, B, E, alpha, beta from a mapping (a fit's JSON object or its ``coefficients``)."""
    if isinstance(data, dict) and isinstance(data.get("coefficients"), dict):
        data = data["coefficients"]
    if not isinstance(data, dict):
        raise InputError(f"coefficients {source}: expected a JSON object with A, B, E, alpha, beta")
    missing = [k for k in ("A", "B", "E", "alpha", "beta") if k not in data]
    if missing:
        raise InputError(f"coefficients {source}: missing {', '.join(missing)}")
    try:
        values = {k: float(data[k]) for k in ("A", "B", "E", "alpha", "beta")}
    except (TypeError, ValueError):
        raise InputError(f"coefficients {source}: A, B, E, alpha, beta must be numbers") from None
    return LawCoefficients(**values, name=str(data.get("name", source)))
