"""A canonical answer told as stream chunks and gathered back (the replay of
cached answers in either mode)."""

from fastgw.ai.answer_chunks import AnswerBuilder, answer_chunks

ANSWER = {
    "id": "chatcmpl-1", "created": 1, "model": "m", "object": "chat.completion",
    "choices": [
        {"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Looking it up.",
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
                           {"id": "call_2", "type": "function",
                            "function": {"name": "time", "arguments": "{}"}}]}},
        {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi"}},
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


def test_an_answer_told_as_chunks_gathers_back_whole():
    chunks = answer_chunks(ANSWER)
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    builder = AnswerBuilder()
    for chunk in chunks:
        builder.add(chunk)
    assert builder.complete
    builder.add({"choices": [], "usage": ANSWER["usage"]})  # the usage chunk of a stream
    assert builder.answer() == ANSWER


def test_a_stream_that_never_finished_is_not_complete():
    builder = AnswerBuilder()
    for chunk in answer_chunks(ANSWER)[:-1]:
        builder.add(chunk)
    assert not builder.complete


def test_deltas_in_pieces_are_joined():
    builder = AnswerBuilder()
    for piece in ("Hel", "lo"):
        builder.add({"id": "x", "choices": [{"index": 0, "delta": {"content": piece}}]})
    builder.add({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}}]}}]})
    builder.add({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": ": 1}"}}]}, "finish_reason": "stop"}]})
    message = builder.answer()["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
