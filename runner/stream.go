package runner

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// attachment is the sibling's stdio, attached before the sibling starts so
// that not one byte of its output is written before anyone listens.
type attachment struct {
	conn types.HijackedResponse
}

// attach attaches to the created sibling id. A *cannotStartError means the
// engine already found that the build's command cannot start.
func attach(ctx context.Context, api Engine, id string, interactive bool) (*attachment, error) {
	options := container.AttachOptions{
		Stream: true,
		Stdin:  interactive,
		Stdout: true,
		Stderr: true,
	}
	conn, err := api.ContainerAttach(ctx, id, options)
	if err != nil && strings.Contains(err.Error(), "unable to upgrade to tcp, received 409") {
		// Podman prepares the container when it is attached to (the OCI
		// runtime's create), so a command that cannot start fails here, with
		// 409, and the SDK drops the answer's body, which says why. Podman's
		// own init call does the same preparation and returns the reason;
		// if it succeeds the attach is tried once more. Docker has no such
		// call (404), and then the 409 stands.
		if reason := initOnPodman(ctx, api, id); reason != nil {
			return nil, &cannotStartError{reason}
		}
		conn, err = api.ContainerAttach(ctx, id, options)
	}
	if err != nil {
		return nil, err
	}
	return &attachment{conn: conn}, nil
}

// cannotStartError is the engine's reason why the build's command cannot
// start, learnt before the start.
type cannotStartError struct{ err error }

func (e *cannotStartError) Error() string { return e.err.Error() }
func (e *cannotStartError) Unwrap() error { return e.err }

// copyOutput copies the sibling's output to stdout and stderr as it arrives,
// until the engine ends the stream, which it does only after the sibling has
// exited and every byte it wrote has been sent. The returned channel gets the
// copy's error (nil at a clean end of stream; a *writeError when stdout or
// stderr refused the bytes) and is then closed. Each of the engine's frames
// is written out as soon as it has arrived (stdcopy.StdCopy), so the task log
// shows each chunk at once and memory stays flat whatever the output's size.
func (a *attachment) copyOutput(stdout, stderr io.Writer, tty bool) <-chan error {
	done := make(chan error, 1)
	stdout, stderr = writeErrorsOf(stdout), writeErrorsOf(stderr)
	go func() {
		defer close(done)
		var err error
		if tty {
			// A terminal merges both streams; the engine sends them raw.
			_, err = io.Copy(stdout, a.conn.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, a.conn.Reader)
		}
		done <- err
	}()
	return done
}

// passOutput runs copyOutput and classifies how it ended. A write that
// stdout or stderr refuses closes the stream, which frees the engine's copier
// (it would otherwise block and hold up the sibling's exit), and aborts the
// run with that failure. The returned channel gets nil at a clean end of
// stream, or the failure as an ExitError.
func (a *attachment) passOutput(stdout, stderr io.Writer, tty bool, abort context.CancelCauseFunc) <-chan error {
	result := make(chan error, 1)
	go func() {
		err := <-a.copyOutput(stdout, stderr, tty)
		var refused *writeError
		if errors.As(err, &refused) {
			a.close()
			err = toolFailure("passing on the build's output: %w", refused.err)
			abort(err)
		} else if err != nil {
			err = toolFailure("lost the engine's stream of the build's output: %w; once the engine is back, run sibling-run reap", err)
		}
		result <- err
	}()
	return result
}

// writeError is a failure to pass output on (sibling-run's stdout closed),
// as opposed to a failure to read it from the engine.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

type errorMarkingWriter struct{ w io.Writer }

func writeErrorsOf(w io.Writer) io.Writer { return errorMarkingWriter{w} }

func (m errorMarkingWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// forwardInput copies stdin to the sibling and closes its input at EOF, so a
// build that reads its input to the end finishes.
//
// With a terminal (tty) the input is never closed: the engine ends a
// terminal's output when its input closes, and the build's last lines would
// be lost. A terminal's end of input (^D) reaches the build as a key, which
// its own terminal turns into an end of file.
func (a *attachment) forwardInput(stdin io.Reader, tty bool) {
	go func() {
		_, _ = io.Copy(a.conn.Conn, stdin)
		if !tty {
			_ = a.conn.CloseWrite()
		}
	}()
}

func (a *attachment) close() { a.conn.Close() }
