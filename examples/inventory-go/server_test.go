package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// newTestServer is the service's handler with its spans kept in memory.
func newTestServer(t *testing.T) (*server, http.Handler, *tracetest.SpanRecorder) {
	t.Helper()
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = provider.Shutdown(t.Context()) })
	s := &server{version: "test", instanceID: "host:1", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return s, s.handler(otelhttp.WithTracerProvider(provider)), recorder
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

func TestHealthzReportsIdentity(t *testing.T) {
	_, h, _ := newTestServer(t)
	w := do(h, "GET", "/healthz", "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if got := w.Header().Get("X-Service-Version"); got != "test" {
		t.Errorf("X-Service-Version = %q", got)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["status"] != "ok" || body["service"] != "inventory-go" {
		t.Errorf("body %s (%v)", w.Body, err)
	}
}

func TestPickAnswersTheWalkAndRecordsInputs(t *testing.T) {
	_, h, recorder := newTestServer(t)
	w := do(h, "POST", "/pick", `{"sku": "lamp", "location": "C-3", "quantity": 2}`)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got pickResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := pickResponse{SKU: "lamp", Quantity: 2, Aisle: "C", Shelf: 3, WalkMetres: 20}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	spans := recorder.Ended()
	if len(spans) != 1 || spans[0].Name() != "POST /pick" {
		t.Fatalf("spans %v", spans)
	}
	attrs := spanAttrs(spans[0])
	if attrs["pick.location"].AsString() != "C-3" || attrs["pick.quantity"].AsInt64() != 2 {
		t.Errorf("attributes %v", attrs)
	}
	if spans[0].Status().Code == codes.Error {
		t.Errorf("status %v", spans[0].Status())
	}
}

func TestPickRejectsBadRequests(t *testing.T) {
	_, h, recorder := newTestServer(t)
	for _, body := range []string{
		``, `[]`, `{"sku": "lamp"}`, `{"sku": "", "location": "A-1", "quantity": 1}`,
		`{"sku": "lamp", "location": "A-1", "quantity": 0}`, `{"sku": "lamp", "location": "A-x", "quantity": 1}`,
		`{"sku": "lamp", "location": "A-1", "quantity": 1, "extra": true}`,
	} {
		if w := do(h, "POST", "/pick", body); w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", body, w.Code)
		}
	}
	for _, s := range recorder.Ended() {
		if s.Status().Code == codes.Error {
			t.Errorf("a 400 is not a span error: %v", s.Status())
		}
	}
}

func explode() {
	var shelves []int
	_ = shelves[3]
}

func TestAPanicIsA500RecordedOnTheSpanWithItsStack(t *testing.T) {
	s, _, _ := newTestServer(t)
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	var report strings.Builder
	s.panics = &report
	h := otelhttp.NewHandler(s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		explode()
	})), "test", otelhttp.WithTracerProvider(provider))
	w := do(h, "GET", "/boom", "")
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "index out of range [3] with length 0") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	spans := recorder.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("spans %v", spans)
	}
	events := spans[0].Events()
	if len(events) != 1 || events[0].Name != "exception" {
		t.Fatalf("events %v", events)
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range events[0].Attributes {
		attrs[kv.Key] = kv.Value.Emit()
	}
	if attrs["exception.type"] != "runtime.Error" {
		t.Errorf("exception.type %q", attrs["exception.type"])
	}
	stack := attrs["exception.stacktrace"]
	lines := strings.Split(stack, "\n")
	if len(lines) < 5 || lines[0] != "panic: runtime error: index out of range [3] with length 0" ||
		!strings.HasPrefix(lines[2], "goroutine ") ||
		!strings.HasPrefix(lines[3], "example.com/inventory-go.explode(") ||
		!strings.Contains(lines[4], "server_test.go:") {
		t.Errorf("stack starts at the panicking function:\n%s", stack)
	}
	if strings.Contains(stack, "recoverPanics") && strings.Index(stack, "recoverPanics") < strings.Index(stack, "explode") {
		t.Errorf("recovery frames above the culprit:\n%s", stack)
	}
	if report.String() != stack {
		t.Errorf("the report on stderr differs from the span's")
	}
}

func TestPanicReportWithoutAPanicFrameKeepsTheStack(t *testing.T) {
	got := panicReport("boom", []byte("goroutine 1 [running]:\nmain.f()\n\t/x/main.go:3 +0x1\n"))
	want := "panic: boom\n\ngoroutine 1 [running]:\nmain.f()\n\t/x/main.go:3 +0x1\n"
	if got != want {
		t.Errorf("got %q", got)
	}
}
