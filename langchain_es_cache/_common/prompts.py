"""The text the semantic cache embeds for a prompt."""

from __future__ import annotations

import json

_MESSAGE_FIELDS = (
    "name",
    "role",
    "tool_calls",
    "invalid_tool_calls",
    "tool_call_id",
    "status",
)
"""What tells two messages of the same text apart for the model, or ties a
tool's result to its call. Never ``id``: LangChain removes message ids from the
prompts it hands to caches, which would otherwise never match across runs."""


def prompt_text(prompt: str) -> str:
    """The text the semantic cache embeds for `prompt`.

    LangChain hands a chat model's prompt to caches as ``dumps`` of its
    messages: JSON full of class paths and field names that every prompt
    shares, which would make any two prompts look alike to an embedding model.
    For such a prompt this returns each message's text on a line of its own
    (prefixed by its type, such as ``system: ``, unless it is the human's); a
    part that is not text (an image) becomes its JSON, so that it still counts.
    Then, one line each (``ai tool_calls: [...]``), the JSON of the message's
    fields in `_MESSAGE_FIELDS` that are set: tool calls with their names,
    arguments and ids, a tool result's ``tool_call_id`` and tool name, a
    legacy ``function_call``. Any other prompt is returned as it is.
    """
    if not prompt.startswith("[{"):
        return prompt
    try:
        items = json.loads(prompt)
    except ValueError:
        return prompt
    lines = []
    for item in items if isinstance(items, list) else [None]:
        kwargs = item.get("kwargs") if isinstance(item, dict) else None
        if not isinstance(kwargs, dict) or item.get("lc") != 1:  # type: ignore[union-attr]
            return prompt
        content = kwargs.get("content")
        parts = [content] if isinstance(content, str) else content
        if not isinstance(parts, list):
            return prompt
        texts = [
            part
            if isinstance(part, str)
            else part["text"]
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
            else json.dumps(part, sort_keys=True)
            for part in parts
        ]
        kind = kwargs.get("type")
        prefix = "" if kind == "human" else f"{kind}: "
        lines.append(prefix + "\n".join(texts))
        fields = {name: kwargs[name] for name in _MESSAGE_FIELDS if kwargs.get(name)}
        extra = kwargs.get("additional_kwargs")
        if isinstance(extra, dict) and extra.get("function_call"):
            fields["function_call"] = extra["function_call"]
        lines.extend(
            f"{kind} {name}: {json.dumps(value, sort_keys=True, ensure_ascii=False)}"
            for name, value in fields.items()
        )
    return "\n".join(lines)
