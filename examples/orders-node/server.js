'use strict';
// The HTTP layer of orders-node: routes, request parsing, what a failure puts on the
// request's SERVER span (made by @opentelemetry/instrumentation-http) and in the log.

const http = require('node:http');
const { SpanStatusCode, trace } = require('@opentelemetry/api');
const { SeverityNumber, logs } = require('@opentelemetry/api-logs');

const { BadRequestError, shippingQuote, validateQuote } = require('./shipping');

/** The routes served, as "METHOD /path". */
const ROUTES = new Set(['GET /healthz', 'POST /quote']);

/** Largest request body accepted, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/** Reads a request body up to MAX_BODY_BYTES; a larger one is a BadRequestError. */
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BadRequestError(`body must be at most ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The body as JSON, or a BadRequestError. */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`invalid JSON: ${err.message}`);
  }
}

function sendJson(res, status, payload, identity) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'X-Service-Version': identity.version,
    'X-Service-Instance': identity.instanceId,
  });
  res.end(body);
}

/** One quote request: parse, check, compute; any other failure is a 500 on an error span. */
async function handleQuote(req, res, identity, quoteOf) {
  const span = trace.getActiveSpan();
  let order;
  try {
    order = validateQuote(parseJson(await readBody(req)));
  } catch (err) {
    if (err instanceof BadRequestError) {
      // A client error: not a span error (OTel HTTP semantic conventions).
      sendJson(res, 400, { error: 'bad request', message: err.message }, identity);
      return;
    }
    throw err;
  }
  // The request's inputs, so that a failure carries what caused it.
  const inputs = { 'order.sku': order.sku, 'order.country': order.country, 'order.weightKg': order.weightKg };
  span?.setAttributes(inputs);
  let quote;
  try {
    quote = quoteOf(order);
  } catch (err) {
    if (err instanceof BadRequestError) {
      sendJson(res, 400, { error: 'bad request', message: err.message }, identity);
      return;
    }
    span?.recordException(err);
    span?.setStatus({ code: SpanStatusCode.ERROR, message: `${err.name}: ${err.message}` });
    span?.setAttribute('error.type', err.name);
    logs.getLogger('orders-node').emit({
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      body: `POST /quote failed for ${order.sku} to ${order.country} (${order.weightKg} kg): ${err.name}: ${err.message}`,
      attributes: {
        ...inputs,
        'exception.type': err.name,
        'exception.message': err.message,
        'exception.stacktrace': err.stack,
        'http.request.method': 'POST',
        'url.path': '/quote',
        'http.response.status_code': 500,
      },
    });
    const traceId = span?.spanContext().traceId;
    sendJson(res, 500, { error: err.name, message: err.message, trace_id: traceId }, identity);
    return;
  }
  sendJson(res, 200, quote, identity);
}

/**
 * The service as an http.Server (not listening yet); `identity` is {version, instanceId}.
 * `quoteOf` prices a valid order (tests swap it to see what a failure leaves behind).
 */
function createServer(identity, { quoteOf = shippingQuote } = {}) {
  return http.createServer((req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    const route = `${req.method} ${path}`;
    if (ROUTES.has(route)) {
      // The instrumentation names a server span by its method only; ours have routes.
      trace.getActiveSpan()?.updateName(route).setAttribute('http.route', path);
    }
    let handled;
    if (route === 'GET /healthz') {
      handled = Promise.resolve(
        sendJson(res, 200, { status: 'ok', service: 'orders-node', version: identity.version, instance: identity.instanceId }, identity),
      );
    } else if (route === 'POST /quote') {
      handled = handleQuote(req, res, identity, quoteOf);
    } else {
      handled = Promise.resolve(sendJson(res, 404, { error: 'not found', path }, identity));
    }
    handled.catch((err) => {
      // Reading the request failed (client went away): nothing useful to answer.
      if (!res.headersSent) {
        sendJson(res, 500, { error: err.name, message: err.message }, identity);
      }
    });
  });
}

module.exports = { MAX_BODY_BYTES, createServer, parseJson };
