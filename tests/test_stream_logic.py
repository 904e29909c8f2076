"""The pure logic of `cache_streams`: chunks of a hit, entries of a miss, keys."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from functools import reduce
from typing import Any

import pytest
from langchain_core.caches import RETURN_VAL_TYPE, InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    GenerationChunk,
)
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_es_cache import cache_streams
from langchain_es_cache._common import streams as logic
from tests.models import StreamingLLM, ToolChatModel


@pytest.fixture
def global_cache() -> Iterator[None]:
    yield None
    set_llm_cache(None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "one",
        "  leading and trailing  ",
        "tabs\tand\nnew lines\n\n",
        "é 漢字 \U0001f600 \ud800 lone surrogate",
        " ".join(f"w{i}" for i in range(1000)),
    ],
)
def test_split_text_joins_back_within_the_limit(text: str) -> None:
    pieces = logic.split_text(text)
    assert "".join(pieces) == text
    assert 1 <= len(pieces) <= logic.HIT_CHUNKS
    assert len(logic.split_text("a b c d e", limit=2)) == 2


def message_fields(message: AIMessage) -> dict[str, Any]:
    return {
        "content": message.content,
        "tool_calls": message.tool_calls,
        "invalid_tool_calls": [
            {k: call[k] for k in ("name", "args", "id")}
            for call in message.invalid_tool_calls
        ],
        "usage_metadata": message.usage_metadata,
        "response_metadata": message.response_metadata,
        "additional_kwargs": message.additional_kwargs,
    }


MESSAGES = {
    "text": AIMessage(content="Paris is the capital of France."),
    "empty": AIMessage(content=""),
    "long": AIMessage(content=" ".join(f"word{i}" for i in range(500))),
    "blocks": AIMessage(
        content=[{"type": "text", "text": "Paris"}, {"type": "text", "text": "!"}]
    ),
    "everything": AIMessage(
        content="Looking it up.",
        id="chatcmpl-42",
        additional_kwargs={"refusal": None, "audio": {"id": "a1"}},
        response_metadata={
            "model_name": "gpt-x",
            "finish_reason": "tool_calls",
            "logprobs": {"content": [{"token": "L", "logprob": -0.1}]},
        },
        usage_metadata={
            "input_tokens": 10,
            "output_tokens": 20,
            "total_tokens": 30,
            "input_token_details": {"cache_read": 4},
            "output_token_details": {"reasoning": 5},
        },
        tool_calls=[
            {
                "name": "search",
                "args": {"q": "capital of France", "n": 3, "exact": True},
                "id": "call-a",
            },
            {
                "name": "weather",
                "args": {"city": "Zürich", "nested": {"units": ["C", None]}},
                "id": "call-b",
            },
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_hit_chunks_sum_to_the_cached_message(name: str) -> None:
    message = MESSAGES[name]
    chunks = logic.chat_hit_chunks(ChatGeneration(message=message))
    assert all(isinstance(chunk.message, AIMessageChunk) for chunk in chunks)
    total = reduce(operator.add, chunks)
    assert message_fields(total.message) == message_fields(message)  # type: ignore[arg-type]
    words = len(message.content.split()) if isinstance(message.content, str) else 1
    assert (len(chunks) == 1) if words <= 1 else (1 < len(chunks) <= logic.HIT_CHUNKS)


def test_invalid_tool_calls_are_replayed_in_one_exact_chunk() -> None:
    """Summed chunks would parse ``{not json`` leniently into a valid call."""
    message = MESSAGES["everything"].model_copy(
        update={
            "invalid_tool_calls": [
                {"name": "broken", "args": "{not json", "id": "call-c", "error": "bad"}
            ]
        }
    )
    [chunk] = logic.chat_hit_chunks(ChatGeneration(message=message))
    assert isinstance(chunk.message, AIMessageChunk)
    assert chunk.message.invalid_tool_calls == message.invalid_tool_calls
    assert message_fields(chunk.message) == message_fields(message)
    # Should anything add it to another chunk, the malformed call is dropped,
    # never turned into a valid one.
    summed = AIMessageChunk(content="") + chunk.message
    assert [call["id"] for call in summed.tool_calls] == ["call-a", "call-b"]


def test_hit_chunks_keep_a_provider_id_and_drop_langchain_run_ids() -> None:
    for message_id, expected in [
        ("chatcmpl-42", "chatcmpl-42"),
        ("run-8e0c-0", None),
        ("lc_run--019a-0", None),
        (None, None),
    ]:
        message = AIMessage(content="a b c", id=message_id)
        chunks = logic.chat_hit_chunks(ChatGeneration(message=message))
        assert {chunk.message.id for chunk in chunks} == {expected}


def test_hit_chunks_carry_generation_info_once() -> None:
    generation = ChatGeneration(
        message=AIMessage(content="a b c"), generation_info={"finish_reason": "stop"}
    )
    chunks = logic.chat_hit_chunks(generation)
    assert reduce(operator.add, chunks).generation_info == {"finish_reason": "stop"}


def test_hit_chunks_do_not_share_the_cached_objects() -> None:
    message = MESSAGES["everything"]
    chunks = logic.chat_hit_chunks(ChatGeneration(message=message))
    chunks[0].message.response_metadata["model_name"] = "changed"
    assert isinstance(chunks[0].message, AIMessageChunk)
    assert chunks[0].message.usage_metadata is not None
    chunks[0].message.usage_metadata["input_tokens"] = 0
    assert message.response_metadata["model_name"] == "gpt-x"
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 10


def test_a_text_entry_is_read_as_an_ai_message() -> None:
    generation = logic.first_chat_generation(
        [
            Generation(text="legacy answer", generation_info={"a": 1}),
            Generation(text=""),
        ]
    )
    assert generation.message == AIMessage(content="legacy answer")
    assert generation.generation_info == {"a": 1}


@pytest.mark.parametrize("text", ["", "one", "Once upon a time, a frog."])
def test_llm_hit_chunks_sum_to_the_generation(text: str) -> None:
    generation = Generation(text=text, generation_info={"finish_reason": "stop"})
    total = reduce(operator.add, logic.llm_hit_chunks(generation))
    assert (total.text, total.generation_info) == (text, {"finish_reason": "stop"})


def test_answers_of_empty_streams_are_none() -> None:
    assert logic.chat_answer([]) is None
    assert logic.llm_answer([]) is None


def test_chat_answer_is_the_summed_message_with_its_generation_info() -> None:
    chunks = [
        ChatGenerationChunk(message=AIMessageChunk(content="Par", id="m1")),
        ChatGenerationChunk(
            message=AIMessageChunk(content="is", response_metadata={"model": "x"}),
            generation_info={"finish_reason": "stop"},
        ),
    ]
    [generation] = logic.chat_answer(chunks) or []
    assert isinstance(generation, ChatGeneration)
    assert type(generation.message) is AIMessage
    assert generation.message.content == "Paris"
    assert generation.message.id == "m1"
    assert generation.message.response_metadata == {
        "finish_reason": "stop",
        "model": "x",
    }


def test_llm_answer_is_one_plain_generation() -> None:
    chunks = [
        GenerationChunk(text="Once "),
        GenerationChunk(text="upon", generation_info={"finish_reason": "stop"}),
    ]
    assert logic.llm_answer(chunks) == [
        Generation(text="Once upon", generation_info={"finish_reason": "stop"})
    ]


def test_resolve_cache_follows_langchain(global_cache: None) -> None:
    own, shared = InMemoryCache(), InMemoryCache()
    assert logic.resolve_cache(own) is own
    assert logic.resolve_cache(None) is None
    assert logic.resolve_cache(False) is None
    with pytest.raises(ValueError, match="cache=True but no global cache is set"):
        logic.resolve_cache(True)
    set_llm_cache(shared)
    assert logic.resolve_cache(None) is shared
    assert logic.resolve_cache(True) is shared
    assert logic.resolve_cache(False) is None
    assert logic.resolve_cache(own) is own


class RecordingCache(InMemoryCache):
    """Records the keys LangChain's own code looks up."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[tuple[str, str]] = []

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        self.keys.append((prompt, llm_string))
        return super().lookup(prompt, llm_string)


def weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


@pytest.mark.parametrize("serializable", [True, False])
@pytest.mark.parametrize(
    "call",
    [
        {"input": "plain text"},
        {"input": [HumanMessage("with an id", id="m-1")]},
        {"input": "stopped", "stop": ["\n", "."]},
        {"input": "with tools", "tools": True},
    ],
)
def test_chat_key_is_the_key_invoke_looks_up(
    serializable: bool, call: dict[str, Any]
) -> None:
    recorder = RecordingCache()
    if serializable:
        model: Any = ToolChatModel(cache=recorder, text="Another answer.")
    else:
        model = GenericFakeChatModel(messages=iter(["a", "b"]), cache=recorder)
    assert type(model).is_lc_serializable() is serializable
    tools = [convert_to_openai_tool(weather)]
    bound = model.bind(tools=tools) if call.get("tools") else model
    bound.invoke(call["input"], stop=call.get("stop"))
    [(prompt, llm_string)] = recorder.keys
    wrapped = cache_streams(model)
    kwargs = bound.kwargs if call.get("tools") else {}
    messages = wrapped._convert_input(call["input"]).to_messages()
    key = logic.chat_key(wrapped, messages, call.get("stop"), kwargs)
    assert key == (prompt, llm_string)


def test_llm_key_is_the_key_generate_looks_up() -> None:
    recorder = RecordingCache()
    llm = StreamingLLM(cache=recorder)
    llm.invoke("a frog", stop=["."], temperature=0.3)
    [(prompt, llm_string)] = recorder.keys
    assert prompt == "a frog"
    assert logic.llm_key(cache_streams(llm), ["."]) == llm_string


class LooksUpLate(ToolChatModel):
    """A model whose cached-generation step would call the model first."""

    def _generate_with_cache(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self._generate(messages, stop=stop, **kwargs)
        return super()._generate_with_cache(messages, stop, run_manager, **kwargs)


def test_a_key_probe_never_calls_the_model() -> None:
    model = LooksUpLate(cache=InMemoryCache())
    with pytest.raises(RuntimeError, match="did not look up its cache"):
        logic.chat_key(cache_streams(model), [HumanMessage("hi")], None, {})
    assert model.calls == 0


def test_usage_without_token_counts_is_left_out() -> None:
    """What langchain-core 1.x leaves in an in-memory cache after an invoke hit
    on an answer without usage."""
    message = AIMessage(content="a b").model_copy(
        update={"usage_metadata": {"total_cost": 0}}
    )
    chunks = logic.chat_hit_chunks(ChatGeneration(message=message))
    assert reduce(operator.add, chunks).message.usage_metadata is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [logic.CHAT_STREAMS, logic.LLM_STREAMS])
def test_a_stream_call_reads_alike_by_position_and_by_name(
    kind: logic.StreamKind,
) -> None:
    manager = object()
    by_position = kind.bind(("in", ["."], manager), {"tools": [1]})
    by_name = kind.bind(
        (), {kind.input_name: "in", "stop": ["."], "run_manager": manager, "tools": [1]}
    )
    assert (
        by_position == by_name == logic.StreamCall("in", ["."], manager, {"tools": [1]})
    )
    assert kind.bind(("in",), {}) == logic.StreamCall("in", None, None, {})
    with pytest.raises(TypeError):
        kind.bind(("in",), {kind.input_name: "again"})
