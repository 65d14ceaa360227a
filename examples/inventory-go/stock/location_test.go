package stock

import (
	"errors"
	"testing"
)

func TestParseLocationReadsAisleAndShelf(t *testing.T) {
	cases := map[string]Location{
		"A-12":   {Aisle: "A", Shelf: 12},
		"c-1":    {Aisle: "C", Shelf: 1},
		" Z-40 ": {Aisle: "Z", Shelf: 40},
	}
	for code, want := range cases {
		got, err := ParseLocation(code)
		if err != nil {
			t.Fatalf("ParseLocation(%q): %v", code, err)
		}
		if got != want {
			t.Errorf("ParseLocation(%q) = %+v, want %+v", code, got, want)
		}
	}
}

func TestParseLocationRejectsBadParts(t *testing.T) {
	for _, code := range []string{"A-x", "AB-3", "7-3", "A-0", "A-41", "A--3"} {
		_, err := ParseLocation(code)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseLocation(%q): err = %v, want ErrInvalid", code, err)
		}
	}
}

func TestWalkMetres(t *testing.T) {
	cases := []struct {
		loc  Location
		want int
	}{
		{Location{Aisle: "A", Shelf: 1}, 0},
		{Location{Aisle: "A", Shelf: 11}, 20},
		{Location{Aisle: "C", Shelf: 3}, 2 * (2*4 + 2)},
	}
	for _, c := range cases {
		if got := WalkMetres(c.loc); got != c.want {
			t.Errorf("WalkMetres(%+v) = %d, want %d", c.loc, got, c.want)
		}
	}
}
