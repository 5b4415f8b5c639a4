// The server of Baton's node20-http template.
//
// OpenFaaS's node20 template runs the handler behind express; this one keeps the same
// contract on Node's http module, so a function needs nothing installed beyond its own
// package.json dependencies (installed at build into function/node_modules): it loads
// function/handler.js, listens on http_port (which Baton sets; 3000 otherwise, the port
// OpenFaaS's template uses) and answers each request with what the handler returns or
// passes to context.succeed.
"use strict";

const http = require("http");
const path = require("path");
const handler = require(path.join(__dirname, "function", "handler.js"));

class FunctionEvent {
  constructor(req, body, url) {
    this.body = body;
    this.headers = req.headers;
    this.method = req.method;
    this.query = Object.fromEntries(url.searchParams);
    this.path = url.pathname;
  }
}

class FunctionContext {
  constructor(done) {
    this.statusCode = 200;
    this.headerValues = {};
    this.done = done;
    this.called = false;
  }
  status(code) {
    if (!code) return this.statusCode;
    this.statusCode = code;
    return this;
  }
  headers(values) {
    if (!values) return this.headerValues;
    this.headerValues = values;
    return this;
  }
  succeed(value) {
    this.called = true;
    this.done(undefined, value);
  }
  fail(error) {
    this.called = true;
    this.done(error);
  }
}

// The body as express's parsers give it to OpenFaaS's template: JSON parsed, text as a
// string, anything else as a Buffer.
function parseBody(raw, type) {
  if (raw.length === 0) return "";
  if (type.includes("json")) {
    try {
      return JSON.parse(raw.toString());
    } catch (e) {
      return raw.toString();
    }
  }
  if (type.startsWith("text/")) return raw.toString();
  return raw;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const url = new URL(req.url, "http://localhost");
    const body = parseBody(Buffer.concat(chunks), req.headers["content-type"] || "");
    let answered = false;
    const context = new FunctionContext((error, value) => {
      if (answered) return;
      answered = true;
      if (error) {
        console.error(error);
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(error.toString ? error.toString() : String(error));
        return;
      }
      const headers = Object.assign({}, context.headers());
      let payload = value === undefined || value === null ? "" : value;
      if (typeof payload === "object" && !Buffer.isBuffer(payload)) {
        payload = JSON.stringify(payload);
        if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) {
          headers["Content-Type"] = "application/json";
        }
      }
      res.writeHead(context.status(), headers);
      res.end(typeof payload === "number" ? String(payload) : payload);
    });
    Promise.resolve()
      .then(() => handler(new FunctionEvent(req, body, url), context))
      .then((result) => {
        if (!context.called) context.succeed(result);
      })
      .catch((error) => context.fail(error));
  });
});

const port = Number(process.env.http_port || 3000);
server.listen(port, "127.0.0.1");
