"""The part of Kubernetes' CEL list library the CRD's rules use (`isSorted`), for cel-python.

The API server has it built in; the operator's own validation (validation.py) gets it from here,
so a rule means the same in both places.
"""

from __future__ import annotations

import itertools
from typing import Any

from celpy import celtypes


def _is_sorted(items: Any) -> celtypes.BoolType:
    values = list(items)
    return celtypes.BoolType(all(left <= right for left, right in itertools.pairwise(values)))


# name -> implementation, merged into the functions validation.py gives cel-python.
CEL_FUNCTIONS: dict[str, Any] = {"isSorted": _is_sorted}
