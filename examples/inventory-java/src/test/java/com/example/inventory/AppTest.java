package com.example.inventory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Round trips over loopback; skipped where loopback is down (a sandbox without a network). */
class AppTest {

    private App app;
    private int port;
    private final HttpClient client = HttpClient.newHttpClient();

    @BeforeEach
    void start() {
        app = new App(new Inventory(List.of(new Item("widget", "Widget", 250, 10))), "test");
        try {
            port = app.start("127.0.0.1", 0);
        } catch (IOException e) {
            Assumptions.abort("loopback unavailable: " + e);
        }
    }

    @AfterEach
    void stop() {
        app.stop(0);
    }

    private HttpResponse<String> send(String method, String pathAndQuery) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + pathAndQuery))
                .method(method, HttpRequest.BodyPublishers.noBody())
                .build();
        return client.send(request, HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void quoteAnswersTheTotal() throws Exception {
        HttpResponse<String> response = send("GET", "/quote?sku=widget&quantity=4");
        assertEquals(200, response.statusCode());
        assertEquals("{\"sku\": \"widget\", \"quantity\": 4, \"total_cents\": 1000}", response.body());
        assertEquals("test", response.headers().firstValue("X-Service-Version").orElse(""));
    }

    @Test
    void badInputIsABadRequest() throws Exception {
        assertEquals(400, send("GET", "/quote?sku=widget&quantity=many").statusCode());
        assertEquals(400, send("GET", "/quote?quantity=1").statusCode());
        assertEquals(400, send("GET", "/quote?sku=widget&quantity=0").statusCode());
        assertEquals(400, send("POST", "/reserve?sku=widget&quantity=11").statusCode());
        assertEquals(405, send("POST", "/quote?sku=widget").statusCode());
    }

    @Test
    void reserveAnswersWhatIsLeft() throws Exception {
        HttpResponse<String> response = send("POST", "/reserve?sku=widget&quantity=3");
        assertEquals(200, response.statusCode());
        assertTrue(response.body().contains("\"left\": 7"), response.body());
    }

    @Test
    void healthNamesTheService() throws Exception {
        HttpResponse<String> response = send("GET", "/healthz");
        assertEquals(200, response.statusCode());
        assertTrue(response.body().contains("\"service\": \"inventory-java\""), response.body());
    }

    @Test
    void queryParametersAreDecoded() {
        assertEquals(Map.of("sku", "a b", "quantity", "2"), App.parseQuery("sku=a+b&quantity=2&sku=c"));
        assertEquals(Map.of(), App.parseQuery(null));
    }

    @Test
    void jsonStringsAreEscaped() {
        assertEquals("\"a\\\"b\\\\c\\n\\u0001\"", App.quote("a\"b\\c\n\u0001"));
    }
}
