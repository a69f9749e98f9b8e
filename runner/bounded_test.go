package runner

import (
	"testing"
	"time"
)

func TestBoundedWaitsEndAtTheirLimit(t *testing.T) {
	never := make(chan struct{})
	if closedWithin(never, 10*time.Millisecond) {
		t.Error("closedWithin: an open channel counted as closed")
	}
	closed := make(chan struct{})
	close(closed)
	if !closedWithin(closed, time.Hour) {
		t.Error("closedWithin: a closed channel was not seen")
	}

	if _, ok := receiveWithin(make(chan error), 10*time.Millisecond); ok {
		t.Error("receiveWithin: nothing was sent, yet it reported a value")
	}
	c := make(chan int, 1)
	c <- 7
	if v, ok := receiveWithin(c, time.Hour); !ok || v != 7 {
		t.Errorf("receiveWithin: got %d, %v; want 7, true", v, ok)
	}

	block := make(chan struct{})
	defer close(block)
	if _, _, ok := callWithin(10*time.Millisecond, func() (int, error) { <-block; return 0, nil }); ok {
		t.Error("callWithin: a call that never returned was reported done")
	}
	if v, err, ok := callWithin(time.Hour, func() (int, error) { return 3, nil }); !ok || err != nil || v != 3 {
		t.Errorf("callWithin: got %d, %v, %v", v, err, ok)
	}
}
