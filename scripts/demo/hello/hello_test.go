package main

import (
	"strings"
	"testing"
)

func TestGreeting(t *testing.T) {
	if got := greeting("world"); !strings.HasPrefix(got, "Hello, world!") {
		t.Errorf("greeting(%q) = %q, want it to start with %q", "world", got, "Hello, world!")
	}
	if got := greeting(""); !strings.HasPrefix(got, "Hello, Bamboo!") {
		t.Errorf("greeting(\"\") = %q, want it to greet Bamboo", got)
	}
}
