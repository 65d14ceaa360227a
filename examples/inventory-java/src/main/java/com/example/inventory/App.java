package com.example.inventory;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.StatusCode;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The HTTP front of the inventory: {@code GET /quote}, {@code POST /reserve}, {@code GET /healthz}.
 *
 * <p>The OpenTelemetry Java agent makes every request a SERVER span and exports it with the
 * log records of {@code java.util.logging}; this class only adds the request's inputs as
 * span attributes ({@code inventory.sku}, {@code inventory.quantity}) and, on a failure,
 * the exception (span event, status ERROR, and a SEVERE log record with the stack trace).
 * An {@link IllegalArgumentException} is the client's mistake: 400, not a span error.
 */
public final class App {

    private static final Logger LOG = Logger.getLogger("inventory");
    private static final int DEFAULT_PORT = 8091;

    private final Inventory inventory;
    private final String version;
    private volatile String instance = "starting";
    private HttpServer server;
    private ExecutorService executor;

    /** An app serving {@code inventory}, reporting {@code version} on every answer. */
    public App(Inventory inventory, String version) {
        this.inventory = inventory;
        this.version = version;
    }

    /** Starts serving on {@code host:port} (port 0 picks a free one); returns the bound port. */
    public int start(String host, int port) throws IOException {
        server = HttpServer.create(new InetSocketAddress(host, port), 64);
        executor = Executors.newFixedThreadPool(8);
        server.setExecutor(executor);
        server.createContext("/healthz", exchange -> answer(exchange, 200, healthJson()));
        server.createContext("/quote", exchange -> handle(exchange, "GET", "/quote"));
        server.createContext("/reserve", exchange -> handle(exchange, "POST", "/reserve"));
        int bound = server.getAddress().getPort();
        instance = hostName() + ":" + bound;
        server.start();
        return bound;
    }

    /** Stops accepting requests and lets the ones in flight finish (at most a second). */
    public void stop() {
        stop(1);
    }

    /** Stops accepting requests and waits at most {@code seconds} for the ones in flight. */
    public void stop(int seconds) {
        if (server != null) {
            server.stop(seconds);
            executor.shutdown();
        }
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }

    private String healthJson() {
        return "{\"status\": \"ok\", \"service\": \"inventory-java\", \"version\": " + quote(version)
                + ", \"instance\": " + quote(instance) + "}";
    }

    private void handle(HttpExchange exchange, String method, String route) throws IOException {
        if (!exchange.getRequestMethod().equals(method)) {
            answer(exchange, 405, "{\"error\": \"method not allowed\"}");
            return;
        }
        Map<String, String> query = parseQuery(exchange.getRequestURI().getRawQuery());
        String sku = query.get("sku");
        String rawQuantity = query.getOrDefault("quantity", "1");
        Span span = Span.current();
        if (sku != null) {
            span.setAttribute("inventory.sku", sku);
        }
        span.setAttribute("inventory.quantity", rawQuantity);
        try {
            if (sku == null || sku.isBlank()) {
                throw new IllegalArgumentException("sku is required");
            }
            int quantity = Integer.parseInt(rawQuantity);
            String body;
            if (route.equals("/quote")) {
                long total = inventory.quote(sku, quantity);
                body = "{\"sku\": " + quote(sku) + ", \"quantity\": " + quantity + ", \"total_cents\": " + total + "}";
            } else {
                int left = inventory.reserve(sku, quantity);
                body = "{\"sku\": " + quote(sku) + ", \"reserved\": " + quantity + ", \"left\": " + left + "}";
            }
            answer(exchange, 200, body);
        } catch (IllegalArgumentException e) {
            // Also NumberFormatException: a quantity that is not a number is a bad request.
            answer(exchange, 400, "{\"error\": \"bad request\", \"message\": " + quote(e.getMessage()) + "}");
        } catch (RuntimeException e) {
            span.recordException(e);
            span.setStatus(StatusCode.ERROR, e.getClass().getSimpleName() + ": " + e.getMessage());
            span.setAttribute("error.type", e.getClass().getName());
            LOG.log(Level.SEVERE, method + " " + route + " failed for sku " + sku + " (quantity " + rawQuantity
                    + "): " + e, e);
            String traceId = span.getSpanContext().getTraceId();
            answer(exchange, 500, "{\"error\": " + quote(e.getClass().getSimpleName()) + ", \"message\": "
                    + quote(String.valueOf(e.getMessage())) + ", \"trace_id\": " + quote(traceId) + "}");
        }
    }

    private void answer(HttpExchange exchange, int status, String json) {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.getResponseHeaders().set("X-Service-Version", version);
        exchange.getResponseHeaders().set("X-Service-Instance", instance);
        try {
            exchange.sendResponseHeaders(status, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        } catch (IOException e) {
            // The client went away before the answer (e.g. a health probe that gave up while the
            // JVM was still warming up): nobody is left to answer, and it is no failure of the
            // service, so it must not end the request's span as an error.
            LOG.log(Level.FINE, "client gone before the " + status + " answer: " + e);
            exchange.close();
        }
    }

    /** The decoded parameters of a query string; the first of a repeated name wins. */
    static Map<String, String> parseQuery(String rawQuery) {
        Map<String, String> params = new LinkedHashMap<>();
        if (rawQuery == null || rawQuery.isEmpty()) {
            return params;
        }
        for (String pair : rawQuery.split("&")) {
            int eq = pair.indexOf('=');
            String name = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1);
            params.putIfAbsent(URLDecoder.decode(name, StandardCharsets.UTF_8),
                    URLDecoder.decode(value, StandardCharsets.UTF_8));
        }
        return params;
    }

    /** {@code text} as a JSON string literal. */
    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    /** Serves until SIGTERM; {@code PORT}, {@code HOST} and {@code SERVICE_VERSION} from the environment. */
    public static void main(String[] args) throws IOException {
        String host = System.getenv().getOrDefault("HOST", "127.0.0.1");
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", String.valueOf(DEFAULT_PORT)));
        String version = System.getenv().getOrDefault("SERVICE_VERSION", "dev");
        App app = new App(new Inventory(), version);
        int bound = app.start(host, port);
        Runtime.getRuntime().addShutdownHook(new Thread(app::stop, "inventory-shutdown"));
        LOG.info("inventory-java " + version + " listening on " + host + ":" + bound);
    }
}
