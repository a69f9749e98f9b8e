package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"sibling-run/runner"
)

// waitTCPCmd is the TCP readiness check of a service. It is not for people:
// sibling-run copies itself into a short-lived container on a build's network
// and runs this there, because only from there can the service be reached
// (see the runner's waitTCP). It exits 0 once a connection succeeds, and 1
// when none did within the timeout.
type waitTCPCmd struct {
	Address string        `arg:"" help:"HOST:PORT to connect to."`
	Timeout time.Duration `arg:"" help:"How long to keep trying."`
}

// dialPause is the pause between two failed connection attempts.
const dialPause = 100 * time.Millisecond

func (w *waitTCPCmd) Run(g *globals) error {
	ctx, cancel := context.WithTimeout(g.Ctx, w.Timeout)
	defer cancel()
	var dialer net.Dialer
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		conn, err := dialer.DialContext(attempt, "tcp", w.Address)
		cancelAttempt()
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return &runner.ExitError{Code: runner.ExitWaitTimedOut, Err: fmt.Errorf("no TCP connection to %s within %s: %w", w.Address, w.Timeout, err)}
		case <-time.After(dialPause):
		}
	}
}
