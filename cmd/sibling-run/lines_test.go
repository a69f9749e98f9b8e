package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestLogLinesStartOnALineOfTheirOwn(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// Separate files: only stderr's own open line is ended.
	out, errOut := newOutputs(open("out"), open("err"))
	fmt.Fprint(out, "stdout open")
	fmt.Fprint(errOut, "closed\n")
	fmt.Fprint(errOut.logLines(), "log 1\n")
	fmt.Fprint(errOut, "50%")
	fmt.Fprint(errOut.logLines(), "log 2\n")
	if got, want := read("out"), "stdout open"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got, want := read("err"), "closed\nlog 1\n50%\nlog 2\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}

	// One file for both, as on a terminal: their lines meet.
	both := open("both")
	out, errOut = newOutputs(both, both)
	fmt.Fprint(out, "stdout open")
	fmt.Fprint(errOut.logLines(), "log\n")
	if got, want := read("both"), "stdout open\nlog\n"; got != want {
		t.Errorf("shared output %q, want %q", got, want)
	}
}
