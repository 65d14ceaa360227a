// inventory-go: the Go service selfheal heals in its tests.
//
//	POST /pick {"sku": "lamp", "location": "A-12", "quantity": 2}
//	     -> 200 {"sku": "lamp", "quantity": 2, "aisle": "A", "shelf": 12, "walk_m": 22}
//	     -> 400 for a body that is not such an object, or a location that is invalid
//	     -> 500 {"error": "panic", ...} for a location without a dash ("A12"): the bug
//	GET /healthz -> 200 {"status": "ok", "service", "version", "instance"}
//
// Every request is one SERVER span (otelhttp); a handler's panic is recovered, answered
// with a 500 and recorded on the span as an exception event with the panic's stack,
// exported over OTLP/HTTP (see telemetry.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	defaultPort = 8083
	// shutdownGrace bounds the wait for requests in flight and for the last export.
	shutdownGrace = 5 * time.Second
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inventory-go:", err)
		os.Exit(1)
	}
}

func run() error {
	port := defaultPort
	if p := os.Getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("PORT=%q is not a number", p)
		}
		port = n
	}
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	flag.StringVar(&host, "host", host, "address to bind (env HOST)")
	flag.IntVar(&port, "port", port, fmt.Sprintf("port to listen on (env PORT, default %d; 0 picks a free one)", defaultPort))
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// Bind first so the instance id carries the real port (matters with port 0).
	listener, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	port = listener.Addr().(*net.TCPAddr).Port
	hostname, _ := os.Hostname()
	srv := &server{
		version:    serviceVersion(),
		instanceID: fmt.Sprintf("%s:%d", hostname, port),
		log:        logger,
		panics:     os.Stderr,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	shutdownTelemetry, err := setupTelemetry(ctx, srv.version, srv.instanceID)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	httpServer := &http.Server{Handler: srv.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(listener) }()
	logger.Info("inventory-go listening", "version", srv.version, "addr", listener.Addr().String(),
		"otlp", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("inventory-go shutting down")
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = errors.Join(httpServer.Shutdown(grace), shutdownTelemetry(grace))
	if errors.Is(err, context.DeadlineExceeded) {
		// No collector answered within the grace period: exiting is still right.
		logger.Warn("shutdown grace period expired", "error", err)
		return nil
	}
	return err
}

// serviceVersion is SERVICE_VERSION, else the short git commit of the working directory,
// else "dev".
func serviceVersion() string {
	if v := os.Getenv("SERVICE_VERSION"); v != "" {
		return v
	}
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "dev"
}
