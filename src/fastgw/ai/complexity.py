"""How demanding a request is, for ai-proxy-advanced's ``complexity``
algorithm: ``simple``, ``medium``, ``complex`` or ``reasoning``, from the
last user message and the request's shape, with no model and in
microseconds (a few precompiled regular expressions over the text).

The signals: the prompt's length; code (fences, code tokens, languages and
tools named); design words (architecture, implement, migration, trade-offs,
a plan or a specification); reasoning words and mathematics (prove, derive,
solve, probability, equations, step by step); tools requested; and the
conversation's depth. Reasoning wins when its signals are strong and the
task is not a large build; a large build (design words with code or length)
is complex; a short request with no such signal is simple; the rest is
medium. ``tests/ai/data/complexity_prompts.jsonl`` holds 209 labelled
prompts the rules were written with, ``complexity_holdout.jsonl`` 60 they
never saw; ``tests/ai/test_complexity.py`` prints the accuracy on both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastgw.ai.prompt_text import last_user_text

SIMPLE, MEDIUM, COMPLEX, REASONING = "simple", "medium", "complex", "reasoning"
TIERS = (SIMPLE, MEDIUM, COMPLEX, REASONING)

# PERF: the words are read once (one findall over at most SCANNED characters)
# and counted against sets; phrases are substring searches; two small
# regular expressions look for code and mathematics.
SCANNED = 2000
_WORDS = re.compile(r"[a-z0-9+#'-]+")
_CODE_TOKENS = re.compile(
    r"(\bdef \w+\(|\bclass \w+|\bimport \w+|\breturn\b|#include|=>|\bfunc \w+|"
    r"\bselect\b[^.]*\bfrom\b|\bawait\b|[{};]\s*$)", re.MULTILINE)
# Substrings and characters without which the code and mathematics expressions
# cannot match (checked in C by ``in`` and one character class).
_CODE_MARKERS = ("{", "}", ";", "=", "#", "def ", "class ", "import ", "return", "func ",
                 "select", "await")
_MAY_BE_MATH = re.compile(r"[\d=^$%\[]")
_MATH = re.compile(r"(\d\s*[-+*/^=]\s*[\dx]|[a-z]\^\d|\bsqrt\b|[=^]|\$\d|\d+(\.\d+)?%|"
                   r"\b\d+/\d+\b|\[\[)")
_CODE_WORDS = frozenset((
    "code", "function", "functions", "script", "scripts", "python", "java", "javascript",
    "typescript", "sql", "regex", "bash", "css", "html", "go", "golang", "rust", "c++", "c",
    "c#", "query", "api", "apis", "class", "tests", "test", "pytest", "json", "yaml", "react",
    "docker", "git", "terraform", "django", "fastapi", "next.js", "kubernetes", "redis",
    "postgresql", "websockets", "webrtc", "sdk", "sdks", "jquery"))
_DESIGN_WORDS = frozenset((
    "design", "designs", "architecture", "architect", "implement", "implementation",
    "implements", "build", "scalable", "scale", "distributed", "migration", "migrate",
    "pipeline", "end-to-end", "comprehensive", "detailed", "full", "complete", "strategy",
    "plan", "specification", "spec", "trade-offs", "trade-off", "refactor", "optimize",
    "optimise", "production", "microservices", "concurrency", "concurrent", "thread-safe",
    "multi-tenant", "multi-device", "requirements", "curriculum", "proposal", "postmortem",
    "analyze", "analyse", "analysis", "review", "rewrite", "convert", "system", "service",
    "services", "infrastructure", "operator", "engine", "compiler", "consensus", "long-form",
    "package", "backend", "full-stack", "security", "authentication", "deployment",
    "database", "schema", "automation", "framework", "platform", "library", "protocol",
    "recovery", "monorepo", "checklist"))
_REASONING_WORDS = frozenset((
    "prove", "proof", "derive", "derivation", "solve", "calculate", "compute", "probability",
    "integral", "derivative", "equation", "equations", "theorem", "induction", "logic",
    "logically", "logical", "puzzle", "riddle", "minimize", "minimise", "maximize",
    "maximise", "reasoning", "reason", "justify", "optimal", "eigenvalues", "limit",
    "converges", "converge", "bayes'", "bayes", "series", "recurrence", "factorial", "prime",
    "odd", "integer", "irrational", "infinitely", "weighings", "valid", "fallacy",
    "constraints", "formula", "npv", "angle", "meet", "lie", "truth", "crossings", "moves"))
_REASONING_PHRASES = ("step by step", "how many ways", "expected number", "minimum number",
                      "growth rate", "show your work", "show that", "show each step",
                      "how long would", "on which day", "what day")
_DESIGN_PHRASES = ("in depth", "in-depth", "zero downtime", "threat model", "step by step,",
                   "data model", "user stories")
_TASK_WORDS = frozenset((
    "explain", "summarize", "summarise", "describe", "compare", "write", "draft", "outline",
    "suggest", "difference", "pros", "example", "examples", "itinerary", "feedback",
    "consider", "habits", "nutshell", "interview", "presentation", "announcement", "email",
    "letter", "description", "limerick", "haiku", "paragraph", "table", "terms", "work?"))
_TASK_PHRASES = ("how does", "how do vaccines", "how do credit", "why ", "what are the")
# Each word's signal, and each phrase's: one dict lookup per distinct word,
# one scan for all the phrases.
CODE, DESIGN, REASON, TASK = range(4)
_KINDS: dict[str, int] = {word: kind for kind, words in (
    (CODE, _CODE_WORDS), (TASK, _TASK_WORDS), (DESIGN, _DESIGN_WORDS),
    (REASON, _REASONING_WORDS)) for word in words}
_PHRASE_KINDS = {phrase: kind for kind, phrases in (
    (DESIGN, _DESIGN_PHRASES), (REASON, _REASONING_PHRASES), (TASK, _TASK_PHRASES))
    for phrase in phrases}
_PHRASE_LIST = tuple(_PHRASE_KINDS.items())


@dataclass(frozen=True, slots=True)
class Complexity:
    tier: str
    reasons: tuple[str, ...]


def classify_text(text: str, tools: bool = False, depth: int = 1) -> Complexity:
    """The tier of a prompt, and the signals that decided it."""
    lowered = text[:SCANNED].lower()
    tokens = _WORDS.findall(lowered)
    signals = [0, 0, 0, 0]  # code words, design, reasoning, task, by kind
    get = _KINDS.get
    for word in tokens:
        kind = get(word)
        if kind is not None:
            signals[kind] += 1
    for phrase, kind in _PHRASE_LIST:
        if phrase in lowered:
            signals[kind] += lowered.count(phrase)
    code_words, design, reasoning, task = signals
    words = len(tokens) if len(text) <= SCANNED else len(text) // 6
    # PERF: the two costlier expressions run only when a cheap look says they may match.
    code = lowered.count("```") >= 2 or (any(marker in lowered for marker in _CODE_MARKERS)
                                         and len(_CODE_TOKENS.findall(lowered)) >= 3)
    math = len(_MATH.findall(lowered)) \
        if _MAY_BE_MATH.search(lowered) is not None or "sqrt" in lowered else 0
    reasons: list[str] = []
    if code:
        reasons.append("code")
    if design:
        reasons.append(f"design words: {design}")
    if reasoning:
        reasons.append(f"reasoning words: {reasoning}")
    if math:
        reasons.append("mathematics")
    if tools:
        reasons.append("tools")
    if depth > 8:
        reasons.append(f"conversation of {depth} messages")
    reasons.append(f"{words} words")
    build = design + code_words // 2 + (2 if code else 0) + words // 20 + text.count(",") // 3
    proof = 2 * reasoning + (2 if math else 0) + math // 3
    if proof >= 4 and (build < 6 or proof > build):
        return Complexity(REASONING, tuple(reasons))
    if build >= 5 or (design >= 2 and words >= 18) or words > 250 or (depth > 8 and build >= 3):
        return Complexity(COMPLEX, tuple(reasons))
    if proof >= 2 and words > 12:
        return Complexity(REASONING, tuple(reasons))
    if words <= 14 and not (code or design or code_words or tools or math or task):
        return Complexity(SIMPLE, tuple(reasons))
    return Complexity(MEDIUM, tuple(reasons))


def classify(request: dict[str, Any]) -> Complexity:
    """The tier of a canonical (OpenAI-shaped) request."""
    messages = request.get("messages")
    return classify_text(last_user_text(request), tools=bool(request.get("tools")),
                         depth=len(messages) if isinstance(messages, list) else 1)
