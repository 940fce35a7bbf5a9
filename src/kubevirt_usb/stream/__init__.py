"""The network-stream boundary: usbredir bytes to and from a VMI through the API server.

`endpoint` (where the API server is and how to authenticate), `failures` (what went wrong, as
the callers classify it) and `usbredir_client` (the asyncio websocket client). Import the module
you need: this package imports nothing itself, so that the engine worker, which needs only
`endpoint` and `failures`, does not load asyncio and the websockets client at every start (about
a third of its modules, seconds of CPU on a small or emulated node).
"""
