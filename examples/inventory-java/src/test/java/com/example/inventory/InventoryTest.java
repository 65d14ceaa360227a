package com.example.inventory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class InventoryTest {

    private final Inventory inventory = new Inventory(List.of(
            new Item("widget", "Widget", 250, 10),
            new Item("gadget", "Gadget", 1_999, 2)));

    @Test
    void quoteMultipliesThePriceOfOnePiece() {
        assertEquals(750, inventory.quote("widget", 3));
        assertEquals(1_999, inventory.quote("gadget", 1));
    }

    @Test
    void quoteRefusesANonPositiveQuantity() {
        assertThrows(IllegalArgumentException.class, () -> inventory.quote("widget", 0));
        assertThrows(IllegalArgumentException.class, () -> inventory.quote("widget", -2));
    }

    @Test
    void reserveTakesPiecesOutOfStock() {
        assertEquals(7, inventory.reserve("widget", 3));
        assertEquals(7, inventory.onHand("widget"));
    }

    @Test
    void reserveRefusesMoreThanIsOnHandAndUnknownItems() {
        assertThrows(IllegalArgumentException.class, () -> inventory.reserve("gadget", 3));
        assertEquals(2, inventory.onHand("gadget"));
        assertThrows(IllegalArgumentException.class, () -> inventory.reserve("nope", 1));
        assertEquals(0, inventory.onHand("nope"));
    }

    @Test
    void theOpeningStockHasTheShopsItems() {
        Inventory opening = new Inventory();
        assertEquals(250, opening.quote("widget", 1));
        assertEquals(1_000, opening.onHand("widget"));
    }
}
