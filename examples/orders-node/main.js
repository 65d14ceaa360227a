'use strict';
// orders-node: the Node.js service selfheal heals in its tests.
//
//   POST /quote {"sku": "lamp", "country": "DE", "weightKg": 2.5}
//        -> 200 {"country": "DE", "zone": "domestic", "weightKg": 2.5, "shippingCents": 820}
//        -> 400 for a body that is not such an object
//        -> 500 {"error": "TypeError", ...} for a well-formed country the zones lack ("XX"): the bug
//   GET /healthz -> 200 {"status": "ok", "service", "version", "instance"}
//
// Every request is one SERVER span; a failure is recorded on it (exception event, status
// ERROR) and logged at ERROR through the OpenTelemetry logs API, both exported over
// OTLP/HTTP (see telemetry.js).

const { execFileSync } = require('node:child_process');
const os = require('node:os');

const DEFAULT_PORT = 8084;
// How long requests in flight and the last export may take after SIGTERM.
const SHUTDOWN_GRACE_MS = 5000;

/** SERVICE_VERSION, else the short git commit of this directory, else "dev". */
function serviceVersion() {
  if (process.env.SERVICE_VERSION) return process.env.SERVICE_VERSION;
  try {
    const out = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: __dirname,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return out.toString().trim() || 'dev';
  } catch {
    return 'dev';
  }
}

function main() {
  const port = Number.parseInt(process.env.PORT ?? `${DEFAULT_PORT}`, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`orders-node: PORT=${process.env.PORT} is not a port\n`);
    process.exit(2);
  }
  const host = process.env.HOST || '127.0.0.1';
  const version = serviceVersion();
  const instanceId = `${os.hostname()}:${port || `pid-${process.pid}`}`;

  // Telemetry first: the http instrumentation patches node:http when server.js loads it.
  const shutdownTelemetry = require('./telemetry').start(version, instanceId);
  const { createServer } = require('./server');
  const server = createServer({ version, instanceId });
  server.listen(port, host, () => {
    const { port: bound } = server.address();
    process.stderr.write(
      `orders-node ${version} listening on http://${host}:${bound} (otlp ${process.env.OTEL_EXPORTER_OTLP_ENDPOINT})\n`,
    );
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`orders-node received ${signal}, shutting down\n`);
    const timer = setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS);
    timer.unref();
    server.close(() => {
      shutdownTelemetry().finally(() => process.exit(0));
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
