package runner

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/term"
)

// rawTerminal puts in into raw mode when it is a terminal, so keys such as
// Ctrl-C reach the build's shell instead of signalling sibling-run, and
// returns the function that restores it. Callers defer the restore so every
// exit path leaves the user's terminal as it was.
func rawTerminal(in io.Reader) (restore func(), err error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}, nil
	}
	state, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return func() { _ = term.Restore(int(f.Fd()), state) }, nil
}

// followTerminalSize sizes the sibling's terminal to out's and resizes it on
// every SIGWINCH until ctx ends. It does nothing when out is not a terminal.
func followTerminalSize(ctx context.Context, api Engine, id string, out io.Writer) {
	f, ok := asTerminal(out)
	if !ok {
		return
	}
	resize := func() {
		width, height, err := term.GetSize(int(f.Fd()))
		if err != nil || width == 0 || height == 0 {
			return
		}
		resizeCtx, cancel := context.WithTimeout(ctx, engineCallTimeout)
		defer cancel()
		_ = api.ContainerResize(resizeCtx, id, container.ResizeOptions{Height: uint(height), Width: uint(width)})
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				resize()
			}
		}
	}()
}

// fileWriter is an output that has a file descriptor: an *os.File, or a
// writer that wraps one and says which (sibling-run's stderr, which keeps
// track of line ends for its log lines).
type fileWriter interface {
	io.Writer
	Fd() uintptr
}

// asTerminal returns w as a fileWriter when it writes to a terminal.
func asTerminal(w io.Writer) (fileWriter, bool) {
	f, ok := w.(fileWriter)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	return f, true
}

// checkTerminal refuses -t with -i when stdin is not a terminal, as docker
// run does. With a terminal, the engine ends the build's output as soon as
// its input ends, so piped or /dev/null input would lose every line of the
// build while its exit code still came through: a passed build with an
// empty log. -t alone (no input) works without a terminal and is allowed.
func checkTerminal(cfg Config) error {
	if !cfg.TTY || !cfg.Interactive {
		return nil
	}
	if f, ok := cfg.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return errors.New("the input device is not a TTY: -t with -i needs a terminal on stdin; drop -t to run the build without one (-i alone passes the input on)")
}
