'use strict';
// HTTP round trips on loopback, with the real http instrumentation and spans kept in memory.
const test = require('node:test');
const assert = require('node:assert/strict');

const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });
// After the instrumentation: it patches node:http when server.js loads it.
const { createServer } = require('../server');
const http = require('node:http');

let base;
let server;
test.before(async () => {
  server = createServer({ version: 'test', instanceId: 'host:1' });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
test.after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await provider.shutdown();
});
test.beforeEach(() => exporter.reset());

// node:http rather than fetch: fetch's parser is WebAssembly, which cannot reserve its
// memory under the address-space limit selfheal's sandbox runs the suite with.
function request(url, method, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function post(path, body) {
  return request(base + path, 'POST', body);
}

function serverSpans() {
  return exporter.getFinishedSpans().filter((s) => s.kind === 1 /* SERVER */);
}

test('healthz reports who answers', async () => {
  const res = await request(`${base}/healthz`, 'GET');
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-service-version'], 'test');
  assert.deepEqual(res.json, { status: 'ok', service: 'orders-node', version: 'test', instance: 'host:1' });
});

test('a quote is answered and its inputs are on the span', async () => {
  const res = await post('/quote', JSON.stringify({ sku: 'lamp', country: 'at', weightKg: 1.5 }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { country: 'AT', zone: 'eu', weightKg: 1.5, shippingCents: 890 + 2 * 180 });
  const [span] = serverSpans();
  assert.equal(span.name, 'POST /quote');
  assert.equal(span.attributes['http.route'], '/quote');
  assert.equal(span.attributes['order.country'], 'AT');
  assert.equal(span.attributes['order.weightKg'], 1.5);
  assert.notEqual(span.status.code, 2);
});

test('bad requests are 400s and not span errors', async () => {
  for (const body of ['', '{"sku":', '[]', JSON.stringify({ sku: 'lamp', country: 'DE', weightKg: -1 })]) {
    const res = await post('/quote', body);
    assert.equal(res.status, 400, body);
    assert.equal(res.json.error, 'bad request');
  }
  for (const span of serverSpans()) {
    assert.notEqual(span.status.code, 2);
  }
});

test('a failure is a 500 recorded on the span with its stack', async () => {
  const failing = createServer({ version: 'test', instanceId: 'host:2' }, {
    quoteOf: (order) => order.missing.field,
  });
  await new Promise((resolve) => failing.listen(0, '127.0.0.1', resolve));
  try {
    const body = JSON.stringify({ sku: 'lamp', country: 'DE', weightKg: 1 });
    const res = await request(`http://127.0.0.1:${failing.address().port}/quote`, 'POST', body);
    assert.equal(res.status, 500);
    const json = res.json;
    assert.equal(json.error, 'TypeError');
    assert.match(json.trace_id, /^[0-9a-f]{32}$/);
  } finally {
    failing.closeAllConnections();
    await new Promise((resolve) => failing.close(resolve));
  }
  const [span] = serverSpans();
  assert.equal(span.status.code, 2);
  assert.equal(span.attributes['error.type'], 'TypeError');
  const [event] = span.events;
  assert.equal(event.name, 'exception');
  assert.equal(event.attributes['exception.type'], 'TypeError');
  assert.match(event.attributes['exception.stacktrace'], /^TypeError: Cannot read properties of undefined \(reading 'field'\)\n {4}at quoteOf \(.*server\.test\.js:\d+:\d+\)/);
});

test('an unknown path is a 404', async () => {
  const res = await post('/nope', '{}');
  assert.equal(res.status, 404);
});
