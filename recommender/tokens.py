"""Approximate token counts, where no tokenizer is given (pure, stdlib only).

Token counts depend on the model's tokenizer, which a load test usually does not have. The
rule of thumb OpenAI publishes for English text is about four characters per token; the
local LLM server and the load generator both use it, so the counts they report agree with
each other, and every report that shows them says they are approximate.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 4.0
APPROXIMATE = "approximate: ~4 characters per token, no tokenizer"


def approx_tokens(text: str) -> int:
    """About how many tokens `text` is: one per four characters, at least one if any."""
    if not text:
        return 0
    return max(1, round(len(text) / CHARS_PER_TOKEN))
