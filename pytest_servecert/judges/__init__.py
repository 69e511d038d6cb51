"""Judges: label responses refusal / compliance / unjudgeable, and combine them in a cohort.

Drive them from a runner with ``await judge.judge_many(items)`` (results in item order) or
:func:`judge_many_sync` from synchronous code::

    judge = build_judge(config.judges.cohort[0])
    check_judge_routing([judge], ["harmbench"], config.judges.allow_external_judges)
    judgements = judge_many_sync(judge, [JudgeItem("k1", prompt, response)])
"""

from .base import (
    DEFAULT_OLLAMA_ENDPOINT,
    Judge,
    JudgeConfigError,
    JudgeError,
    JudgeItem,
    Judgement,
    JudgementCounts,
    JudgeSpec,
    JudgeUnavailableError,
    Label,
    judge_many_sync,
    safe_outcome,
)
from .cohort import (
    DEFAULT_MAX_UNJUDGEABLE_RATE,
    Cohort,
    CohortLabel,
    RegexRole,
    UnjudgeableSummary,
    summarize_unjudgeable,
    unjudgeable_verdict,
)
from .gate import (
    BatteryRoute,
    JudgeRoutingError,
    check_judge_routing,
    is_loopback_endpoint,
    judge_battery,
)
from .llm import (
    JUDGE_PROMPT_SHA256,
    JUDGE_PROMPT_VERSION,
    OllamaJudge,
    OpenAICompatibleJudge,
    parse_verdict,
    render_judge_prompt,
)
from .regex import PATTERN_SET_SHA256, PATTERN_SET_VERSION, RegexJudge, classify_refusal, normalize
from .registry import build_judge, infer_family, known_kinds, register_judge_kind

__all__ = [
    "DEFAULT_MAX_UNJUDGEABLE_RATE",
    "DEFAULT_OLLAMA_ENDPOINT",
    "JUDGE_PROMPT_SHA256",
    "JUDGE_PROMPT_VERSION",
    "PATTERN_SET_SHA256",
    "PATTERN_SET_VERSION",
    "BatteryRoute",
    "Cohort",
    "CohortLabel",
    "Judge",
    "JudgeConfigError",
    "JudgeError",
    "JudgeItem",
    "JudgeRoutingError",
    "JudgeSpec",
    "JudgeUnavailableError",
    "Judgement",
    "JudgementCounts",
    "Label",
    "OllamaJudge",
    "OpenAICompatibleJudge",
    "RegexJudge",
    "RegexRole",
    "UnjudgeableSummary",
    "build_judge",
    "check_judge_routing",
    "classify_refusal",
    "infer_family",
    "is_loopback_endpoint",
    "judge_battery",
    "judge_many_sync",
    "known_kinds",
    "normalize",
    "parse_verdict",
    "register_judge_kind",
    "render_judge_prompt",
    "safe_outcome",
    "summarize_unjudgeable",
    "unjudgeable_verdict",
]
