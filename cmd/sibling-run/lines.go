package main

import (
	"os"
	"sync"
)

// lineEnds is an output that the build's bytes and sibling-run's log lines
// share. It passes the build's bytes on as they are and remembers whether
// the last one ended a line, so that a log line after a build's unterminated
// last line ("progress: 97%") starts on a line of its own instead of being
// glued to the build's text in the task log.
type lineEnds struct {
	file *os.File
	// state is shared by stdout and stderr when both are the same file, a
	// terminal say, where their lines meet.
	state *lineState
}

type lineState struct {
	mu      sync.Mutex
	midLine bool
}

// newOutputs wraps stdout and stderr; log lines go to the stderr returned.
func newOutputs(stdout, stderr *os.File) (out, errOut *lineEnds) {
	errState := &lineState{}
	outState := &lineState{}
	if sameFile(stdout, stderr) {
		outState = errState
	}
	return &lineEnds{stdout, outState}, &lineEnds{stderr, errState}
}

// Write passes the build's bytes on unchanged.
func (l *lineEnds) Write(p []byte) (int, error) {
	l.state.mu.Lock()
	defer l.state.mu.Unlock()
	return l.writeLocked(p)
}

// writeLocked writes p and notes whether it ended a line; the caller holds
// the state's lock.
func (l *lineEnds) writeLocked(p []byte) (int, error) {
	n, err := l.file.Write(p)
	if n > 0 {
		l.state.midLine = p[n-1] != '\n'
	}
	return n, err
}

// Fd lets the runner find out whether the output is a terminal.
func (l *lineEnds) Fd() uintptr { return l.file.Fd() }

// logLines returns the writer for sibling-run's own lines, which ends an
// unterminated line of the build's first.
func (l *lineEnds) logLines() logLineWriter { return logLineWriter{l} }

type logLineWriter struct{ l *lineEnds }

func (w logLineWriter) Write(p []byte) (int, error) {
	w.l.state.mu.Lock()
	defer w.l.state.mu.Unlock()
	if w.l.state.midLine {
		if _, err := w.l.writeLocked([]byte{'\n'}); err != nil {
			return 0, err
		}
	}
	return w.l.writeLocked(p)
}

func sameFile(a, b *os.File) bool {
	ai, err := a.Stat()
	if err != nil {
		return false
	}
	bi, err := b.Stat()
	return err == nil && os.SameFile(ai, bi)
}
