package main

// OpenTelemetry setup: traces over OTLP/HTTP (protobuf) with the stock Go SDK. The only
// local choices are a short batch delay (so selfheal sees a failure within a second), a
// short export timeout (so a SIGTERM flush without a collector stays short) and a
// resource that names the service, its version and its instance.

import (
	"context"
	"log"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const (
	serviceName = "inventory-go"
	// defaultOTLPEndpoint is used when OTEL_EXPORTER_OTLP_ENDPOINT is unset (the SDK's
	// own default is https, which a local collector does not speak).
	defaultOTLPEndpoint = "http://127.0.0.1:4318"
	// defaultScheduleDelay applies when OTEL_BSP_SCHEDULE_DELAY is unset.
	defaultScheduleDelay = 250 * time.Millisecond
	// defaultExportTimeout applies when OTEL_EXPORTER_OTLP_TIMEOUT is unset.
	defaultExportTimeout = 3 * time.Second
)

// resourceAttributes are the attributes inventory-go reports on every span (before
// OTEL_RESOURCE_ATTRIBUTES is merged in).
func resourceAttributes(version, instanceID string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("service.name", serviceName),
		attribute.String("service.version", version),
		attribute.String("service.instance.id", instanceID),
	}
	if env := os.Getenv("DEPLOYMENT_ENVIRONMENT"); env != "" {
		attrs = append(attrs,
			attribute.String("deployment.environment", env),
			attribute.String("deployment.environment.name", env))
	}
	return attrs
}

// setupTelemetry installs the global tracer provider and the W3C propagator. The
// returned function flushes and shuts the provider down; call it once on exit.
func setupTelemetry(ctx context.Context, version, instanceID string) (func(context.Context) error, error) {
	var opts []otlptracehttp.Option
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(defaultOTLPEndpoint+"/v1/traces"))
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_TIMEOUT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") == "" {
		opts = append(opts, otlptracehttp.WithTimeout(defaultExportTimeout))
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	// Ours last, so they win over OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
		resource.WithAttributes(resourceAttributes(version, instanceID)...),
	)
	if err != nil {
		return nil, err
	}
	var batch []sdktrace.BatchSpanProcessorOption
	if os.Getenv("OTEL_BSP_SCHEDULE_DELAY") == "" {
		batch = append(batch, sdktrace.WithBatchTimeout(defaultScheduleDelay))
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, batch...),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetErrorHandler(&rateLimitedErrors{interval: 10 * time.Second})
	return provider.Shutdown, nil
}

// rateLimitedErrors prints the SDK's errors (export failures) to stderr, at most one per
// interval: without it an absent collector fills the log with a line every batch.
type rateLimitedErrors struct {
	mu       sync.Mutex
	last     time.Time
	interval time.Duration
}

func (h *rateLimitedErrors) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := time.Now(); now.Sub(h.last) >= h.interval {
		h.last = now
		log.Printf("opentelemetry: %v", err)
	}
}
