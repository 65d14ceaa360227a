// Package stock holds the warehouse rules of inventory-go: pure functions, no I/O.
//
// ParseLocation carries the bug selfheal heals in its Go end-to-end test: a location
// code without a dash ("A12") makes parts[1] index past the end of the split.
package stock

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid marks a request the caller got wrong; the HTTP layer answers it with 400.
var ErrInvalid = errors.New("invalid request")

// Location is a bin in the warehouse: an aisle letter and a shelf number.
type Location struct {
	Aisle string
	Shelf int
}

// ParseLocation reads a bin code such as "A-12" (aisle A, shelf 12).
func ParseLocation(location string) (Location, error) {
	parts := strings.Split(strings.TrimSpace(location), "-")
	shelf, err := strconv.Atoi(parts[1])
	if err != nil {
		return Location{}, fmt.Errorf("%w: shelf %q is not a number", ErrInvalid, parts[1])
	}
	aisle := strings.ToUpper(parts[0])
	if len(aisle) != 1 || aisle[0] < 'A' || aisle[0] > 'Z' {
		return Location{}, fmt.Errorf("%w: aisle %q is not a letter", ErrInvalid, parts[0])
	}
	if shelf < 1 || shelf > MaxShelf {
		return Location{}, fmt.Errorf("%w: shelf %d is not between 1 and %d", ErrInvalid, shelf, MaxShelf)
	}
	return Location{Aisle: aisle, Shelf: shelf}, nil
}

// MaxShelf is the highest shelf number of an aisle.
const MaxShelf = 40

// Metres between two aisles and between two shelves of an aisle.
const (
	aisleSpacing = 4
	shelfSpacing = 1
)

// WalkMetres is how far a picker walks from the packing desk (before aisle A, shelf 1)
// to the location and back.
func WalkMetres(loc Location) int {
	aisles := int(loc.Aisle[0] - 'A')
	return 2 * (aisles*aisleSpacing + (loc.Shelf-1)*shelfSpacing)
}
