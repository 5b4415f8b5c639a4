"""A wasi:http component in Python, built by componentize-py: the exported incoming handler,
written against the bindings componentize-py generates for the world in ../wit."""
from wit_world import exports
from wit_world.imports.types import (
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
)
from componentize_py_types import Ok


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(f"hello from python at {path}\n".encode())
        OutgoingBody.finish(body, None)
