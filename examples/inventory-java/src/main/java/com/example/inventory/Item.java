package com.example.inventory;

/**
 * One stock-keeping unit: what it is called, what one piece costs, how many are on hand.
 *
 * @param sku the stock-keeping unit, e.g. {@code widget}
 * @param name a name for people
 * @param priceCents the price of one piece, in cents
 * @param onHand pieces in stock
 */
public record Item(String sku, String name, long priceCents, int onHand) {

    /** The same item with {@code pieces} fewer on hand. */
    public Item take(int pieces) {
        return new Item(sku, name, priceCents, onHand - pieces);
    }
}
