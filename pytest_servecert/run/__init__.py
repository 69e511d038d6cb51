"""The layer-5 run: plan → sample → store → judge → pair → claims.

Each phase is a module with one job that returns plain frozen data to :func:`certify`
(``certify.py``); no phase reads another's state:

* ``plan.py``     which answers are needed (arm, context, battery, prompt, replicate) and which
                  distinct server each needs → :class:`~.plan.Plan`;
* ``sample.py``   the store is asked what is *missing*; a server boots only if something it
                  serves is missing, each distinct server once (``ServerPool``); every answer
                  is stored as it arrives → :class:`~.sample.Sampled`;
* ``judge.py``    judges label what is unlabelled; the cohort vote is stored as one more label
                  set → :class:`~.judge.Judged`;
* ``pair.py``     pairs counted per cell (:func:`~.pair.count_pairs`, the one definition)
                  → :class:`~.pair.Paired`;
* ``verdicts.py`` ``claims/`` turns cells and labels into results.

The report (``report/``) reads the returned :class:`~.results.CertificationRun`, never a phase.
"""

from __future__ import annotations

from .certify import certify
from .pair import PairCounts, count_pairs
from .plan import parameter_count, resolve_model, resolve_served_model
from .results import CertificationRun, DiscordantPair, RunCounts, ServerRecord

__all__ = [
    "CertificationRun",
    "DiscordantPair",
    "PairCounts",
    "RunCounts",
    "ServerRecord",
    "certify",
    "count_pairs",
    "parameter_count",
    "resolve_model",
    "resolve_served_model",
]
