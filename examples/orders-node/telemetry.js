'use strict';
// OpenTelemetry setup for orders-node: traces and logs over OTLP/HTTP with the stock
// Node SDK (@opentelemetry/sdk-node), the node:http server instrumented by
// @opentelemetry/instrumentation-http. The only local choices are short batch delays (so
// selfheal sees a failure within a second), a short export timeout (so a SIGTERM flush
// without a collector stays short), no metrics, and a resource that names the service,
// its version and its instance.
//
// Load this before anything requires node:http: the instrumentation patches the module
// when it is first loaded.

const DEFAULT_OTLP_ENDPOINT = 'http://127.0.0.1:4318';
const SERVICE_NAME = 'orders-node';
// Batch delay when the standard OTEL_BSP_/OTEL_BLRP_SCHEDULE_DELAY variables are unset.
const DEFAULT_SCHEDULE_DELAY_MS = 250;
// Exporter timeout when OTEL_EXPORTER_OTLP_TIMEOUT is unset, in milliseconds.
const DEFAULT_EXPORT_TIMEOUT_MS = '3000';

/** The resource attributes orders-node reports (before OTEL_RESOURCE_ATTRIBUTES is merged in). */
function resourceAttributes(version, instanceId) {
  const attrs = {
    'service.name': SERVICE_NAME,
    'service.version': version,
    'service.instance.id': instanceId,
  };
  const env = process.env.DEPLOYMENT_ENVIRONMENT;
  if (env) {
    attrs['deployment.environment'] = env;
    attrs['deployment.environment.name'] = env;
  }
  return attrs;
}

/**
 * Starts the SDK: tracer and logger providers, the http instrumentation, the W3C
 * propagator. Returns an async function that flushes and shuts everything down.
 */
function start(version, instanceId) {
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT ??= DEFAULT_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_TIMEOUT ??= DEFAULT_EXPORT_TIMEOUT_MS;
  process.env.OTEL_METRICS_EXPORTER ??= 'none';

  const { NodeSDK } = require('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
  const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
  const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
  const { resourceFromAttributes } = require('@opentelemetry/resources');

  const delay = (variable) => (process.env[variable] ? undefined : DEFAULT_SCHEDULE_DELAY_MS);
  const sdk = new NodeSDK({
    // Merged over the detected resource (OTEL_RESOURCE_ATTRIBUTES, host, process): ours win.
    resource: resourceFromAttributes(resourceAttributes(version, instanceId)),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter(), {
        scheduledDelayMillis: delay('OTEL_BSP_SCHEDULE_DELAY'),
      }),
    ],
    logRecordProcessors: [
      new BatchLogRecordProcessor({
        exporter: new OTLPLogExporter(),
        scheduledDelayMillis: delay('OTEL_BLRP_SCHEDULE_DELAY'),
      }),
    ],
    instrumentations: [new HttpInstrumentation()],
  });
  sdk.start();
  let done = null;
  return () => {
    done ??= sdk.shutdown().catch((err) => {
      process.stderr.write(`orders-node: telemetry shutdown: ${err.message}\n`);
    });
    return done;
  };
}

module.exports = { SERVICE_NAME, resourceAttributes, start };
