"""JSON-RPC messages are checked before anything acts on them, with the
specification's codes."""

import pytest

from fastgw.mcp.jsonrpc import JSONRPCError, parse


@pytest.mark.parametrize("body, code, message_id", [
    (b"{not json", -32700, None),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600, None),
    (b'"ping"', -32600, None),
    (b'{"jsonrpc": "1.0", "id": 7, "method": "ping"}', -32600, 7),
    (b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}', -32600, None),
    (b'{"jsonrpc": "2.0", "id": 3, "method": 5}', -32600, 3),
    (b'{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": [1]}', -32602, 4),
    (b'{"jsonrpc": "2.0", "id": 5}', -32600, 5),
])
def test_bad_messages_get_the_specifications_codes(body, code, message_id):
    with pytest.raises(JSONRPCError) as caught:
        parse(body)
    answer = caught.value.answer()
    assert (answer["error"]["code"], answer["id"]) == (code, message_id)


def test_requests_notifications_and_responses():
    request = parse(b'{"jsonrpc": "2.0", "id": "a", "method": "tools/list"}')
    assert (request.method, request.id, request.is_request) == ("tools/list", "a", True)
    note = parse(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    assert (note.method, note.is_request) == ("notifications/initialized", False)
    response = parse(b'{"jsonrpc": "2.0", "id": 9, "result": {}}')
    assert (response.method, response.is_request) == (None, False)
