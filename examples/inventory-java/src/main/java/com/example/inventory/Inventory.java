package com.example.inventory;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The stock of the shop and the prices of its items. Safe for concurrent requests. */
public final class Inventory {

    private final Map<String, Item> items = new ConcurrentHashMap<>();

    /** An inventory with the shop's opening stock. */
    public Inventory() {
        this(List.of(
                new Item("widget", "Widget", 250, 1_000),
                new Item("gadget", "Gadget", 1_999, 200),
                new Item("sprocket", "Sprocket", 75, 5_000)));
    }

    /** An inventory holding exactly {@code stock}. */
    public Inventory(List<Item> stock) {
        for (Item item : stock) {
            items.put(item.sku(), item);
        }
    }

    /** The price of {@code quantity} pieces of {@code sku}, in cents. */
    public long quote(String sku, int quantity) {
        if (quantity <= 0) {
            throw new IllegalArgumentException("quantity must be positive, got " + quantity);
        }
        Item item = items.get(sku);
        return item.priceCents() * quantity;
    }

    /** Takes {@code quantity} pieces of {@code sku} out of stock; returns how many are left. */
    public int reserve(String sku, int quantity) {
        if (quantity <= 0) {
            throw new IllegalArgumentException("quantity must be positive, got " + quantity);
        }
        Item left = items.computeIfPresent(sku, (key, item) -> {
            if (item.onHand() < quantity) {
                throw new IllegalArgumentException("only " + item.onHand() + " of " + key + " on hand");
            }
            return item.take(quantity);
        });
        if (left == null) {
            throw new IllegalArgumentException("unknown sku " + sku);
        }
        return left.onHand();
    }

    /** How many pieces of {@code sku} are on hand; 0 for an unknown one. */
    public int onHand(String sku) {
        Item item = items.get(sku);
        return item == null ? 0 : item.onHand();
    }
}
