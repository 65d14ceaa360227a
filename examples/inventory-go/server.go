package main

// The HTTP layer: routes, request parsing, the otelhttp SERVER span of every request,
// and the recovery of a handler's panic (a 500, recorded on the span with its stack).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"example.com/inventory-go/stock"
)

// maxBodyBytes bounds a request body.
const maxBodyBytes = 64 * 1024

// server carries the identity every response reports.
type server struct {
	version    string
	instanceID string
	log        *slog.Logger
	// panics receives the report of every recovered panic (stderr in main).
	panics io.Writer
}

// pickRequest is the body of POST /pick.
type pickRequest struct {
	SKU      string `json:"sku"`
	Location string `json:"location"`
	Quantity int    `json:"quantity"`
}

// pickResponse is the answer to a valid pick.
type pickResponse struct {
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
	Aisle      string `json:"aisle"`
	Shelf      int    `json:"shelf"`
	WalkMetres int    `json:"walk_m"`
}

// handler is the whole service: routes behind panic recovery, inside the otelhttp span.
func (s *server) handler(opts ...otelhttp.Option) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("POST /pick", s.pick)
	opts = append([]otelhttp.Option{
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + r.URL.Path
		}),
	}, opts...)
	return otelhttp.NewHandler(s.withIdentity(s.recoverPanics(mux)), serviceName, opts...)
}

func (s *server) withIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Service-Version", s.version)
		w.Header().Set("X-Service-Instance", s.instanceID)
		next.ServeHTTP(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"status": "ok", "service": serviceName, "version": s.version, "instance": s.instanceID,
	})
}

func (s *server) pick(w http.ResponseWriter, r *http.Request) {
	span := trace.SpanFromContext(r.Context())
	req, err := parsePick(r.Body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request", "message": err.Error()})
		return
	}
	// The request's inputs, so that a failure carries what caused it.
	span.SetAttributes(
		attribute.String("pick.sku", req.SKU),
		attribute.String("pick.location", req.Location),
		attribute.Int("pick.quantity", req.Quantity),
	)
	loc, err := stock.ParseLocation(req.Location)
	if errors.Is(err, stock.ErrInvalid) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request", "message": err.Error()})
		return
	}
	if err != nil {
		s.fail(w, r, "ParseLocation", err)
		return
	}
	writeJSON(w, http.StatusOK, pickResponse{
		SKU: req.SKU, Quantity: req.Quantity, Aisle: loc.Aisle, Shelf: loc.Shelf,
		WalkMetres: stock.WalkMetres(loc),
	})
}

// parsePick reads and checks a POST /pick body.
func parsePick(body io.Reader) (pickRequest, error) {
	var req pickRequest
	dec := json.NewDecoder(io.LimitReader(body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("invalid JSON: %w", err)
	}
	if strings.TrimSpace(req.SKU) == "" {
		return req, errors.New("sku must be a non-empty string")
	}
	if req.Quantity < 1 {
		return req, errors.New("quantity must be at least 1")
	}
	if strings.TrimSpace(req.Location) == "" {
		return req, errors.New("location must be a non-empty string")
	}
	return req, nil
}

// fail answers an unexpected error with a 500 and marks the span.
func (s *server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	span := trace.SpanFromContext(r.Context())
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	s.log.ErrorContext(r.Context(), what+" failed", "error", err, "path", r.URL.Path)
	writeJSON(w, http.StatusInternalServerError, map[string]string{
		"error": "internal", "message": err.Error(), "trace_id": span.SpanContext().TraceID().String(),
	})
}

// recoverPanics turns a handler's panic into a 500 and records it on the request's span:
// an "exception" event whose exception.stacktrace reads as Go prints an unrecovered panic
// ("panic: …", then the panicking goroutine from the panicking function outwards).
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			recovered := recover()
			if recovered == nil {
				return
			}
			if recovered == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(recovered)
			}
			message := fmt.Sprint(recovered)
			kind := fmt.Sprintf("%T", recovered)
			if _, ok := recovered.(runtime.Error); ok {
				kind = "runtime.Error"
			}
			stack := panicReport(message, debug.Stack())
			span := trace.SpanFromContext(r.Context())
			span.AddEvent("exception", trace.WithAttributes(
				attribute.String("exception.type", kind),
				attribute.String("exception.message", message),
				attribute.String("exception.stacktrace", stack),
				attribute.Bool("exception.escaped", false),
			))
			span.SetStatus(codes.Error, "panic: "+message)
			span.SetAttributes(attribute.String("error.type", kind))
			s.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", message,
				"trace_id", span.SpanContext().TraceID().String())
			if s.panics != nil {
				_, _ = io.WriteString(s.panics, stack)
			}
			writeJSON(w, http.StatusInternalServerError, map[string]string{
				"error": "panic", "message": message, "trace_id": span.SpanContext().TraceID().String(),
			})
		}()
		next.ServeHTTP(w, r)
	})
}

// panicReport is the text Go prints for an unrecovered panic, built from a stack taken
// inside the deferred recovery: the "panic: message" line, the goroutine header, then the
// frames below the runtime's panic frame (the recovery's own frames and the runtime's
// panic machinery are left out, as the runtime leaves them out of its own report).
func panicReport(message string, stack []byte) string {
	lines := strings.Split(strings.TrimRight(string(stack), "\n"), "\n")
	if len(lines) == 0 {
		return "panic: " + message + "\n"
	}
	header, frames := lines[0], lines[1:]
	// Frames come in pairs: "pkg.func(args)", then "\tfile:line +0x…".
	cut := -1
	for i := 0; i+1 < len(frames); i += 2 {
		if strings.HasPrefix(frames[i], "panic(") {
			cut = i + 2
			// runtime.goPanicIndex and friends sit between panic and the culprit.
			for cut+1 < len(frames) && strings.HasPrefix(frames[cut], "runtime.") {
				cut += 2
			}
			break
		}
	}
	if cut >= 0 && cut <= len(frames) {
		frames = frames[cut:]
	}
	return "panic: " + message + "\n\n" + header + "\n" + strings.Join(frames, "\n") + "\n"
}

func writeJSON(w http.ResponseWriter, status int, payload any) {
	body, err := json.Marshal(payload)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
