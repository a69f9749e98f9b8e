package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

// otherSignal is an os.Signal that is not a syscall.Signal.
type otherSignal struct{}

func (otherSignal) String() string { return "other" }
func (otherSignal) Signal()        {}

func TestInterrupted(t *testing.T) {
	tests := []struct {
		sig        os.Signal
		wantCode   int
		wantSignal syscall.Signal
		wantText   string
	}{
		{syscall.SIGINT, 130, syscall.SIGINT, "stopped by SIGINT"},
		{os.Interrupt, 130, syscall.SIGINT, "stopped by SIGINT"},
		{syscall.SIGTERM, 143, syscall.SIGTERM, "stopped by SIGTERM"},
		{syscall.SIGHUP, 129, syscall.SIGHUP, "stopped by SIGHUP"},
		{syscall.SIGQUIT, 131, syscall.SIGQUIT, "stopped by SIGQUIT"},
		{syscall.SIGUSR1, 128 + int(syscall.SIGUSR1), syscall.SIGUSR1, "stopped by SIGUSR1"},
		// A signal of unknown kind is treated as a request to terminate.
		{otherSignal{}, 143, syscall.SIGTERM, "stopped by SIGTERM"},
	}
	for _, tt := range tests {
		err := Interrupted(tt.sig)
		coded, ok := err.(interface{ ExitCode() int })
		if !ok {
			t.Fatalf("Interrupted(%v) = %T, which has no ExitCode method", tt.sig, err)
		}
		if got := coded.ExitCode(); got != tt.wantCode {
			t.Errorf("Interrupted(%v).ExitCode() = %d, want %d", tt.sig, got, tt.wantCode)
		}
		var interrupt *InterruptError
		if !errors.As(err, &interrupt) || interrupt.Signal != tt.wantSignal {
			t.Errorf("Interrupted(%v) = %#v, want an *InterruptError for %v", tt.sig, err, tt.wantSignal)
		}
		if got := err.Error(); got != tt.wantText {
			t.Errorf("Interrupted(%v).Error() = %q, want %q", tt.sig, got, tt.wantText)
		}
	}
}

func TestInterruptedAsCancelCause(t *testing.T) {
	// main cancels the run's context with Interrupted; the exit code must
	// still be found through the wrapping that callers add.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(Interrupted(syscall.SIGTERM))
	err := fmt.Errorf("run: %w", context.Cause(ctx))
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) {
		t.Fatalf("errors.As(%v, ExitCode) = false, want true", err)
	}
	if got, want := coded.ExitCode(), 143; got != want {
		t.Errorf("ExitCode() = %d, want %d", got, want)
	}
}

func TestExitError(t *testing.T) {
	inner := fs.ErrNotExist
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantText string
	}{
		{"literal", &ExitError{Code: ExitNotFound, Err: inner}, 127, inner.Error()},
		{"toolFailure", toolFailure("reading env file: %w", inner), 125, "reading env file: " + inner.Error()},
		{"wrapped again", fmt.Errorf("outer: %w", &ExitError{Code: ExitCannotInvoke, Err: inner}), 126, "outer: " + inner.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, inner) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = false, want true", tt.err)
			}
			var exit *ExitError
			if !errors.As(tt.err, &exit) {
				t.Fatalf("errors.As(%v, *ExitError) = false, want true", tt.err)
			}
			if got := exit.ExitCode(); got != tt.wantCode {
				t.Errorf("ExitCode() = %d, want %d", got, tt.wantCode)
			}
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
		})
	}
}

func TestSignalName(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGINT, "SIGINT"},
		{syscall.SIGTERM, "SIGTERM"},
		{syscall.SIGHUP, "SIGHUP"},
		{syscall.SIGQUIT, "SIGQUIT"},
		{syscall.SIGKILL, "SIGKILL"},
		{syscall.SIGUSR1, "SIGUSR1"},
		// The engine takes a number for a signal without a name.
		{syscall.Signal(64), "64"},
	}
	for _, tt := range tests {
		if got := signalName(tt.sig); got != tt.want {
			t.Errorf("signalName(%d) = %q, want %q", int(tt.sig), got, tt.want)
		}
	}
}
