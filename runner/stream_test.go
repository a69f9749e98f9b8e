package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"sibling-run/runner/internal/fakeengine"
)

// passed runs passOutput on an attachment that write fills and then ends.
func passed(t *testing.T, write func(a *fakeengine.Attachment), stdout *lockedBuffer, tty bool) (error, error) {
	t.Helper()
	fake := fakeengine.NewAttachment()
	att := &attachment{conn: fake.Response()}
	stderr := &lockedBuffer{}
	ctx, abort := context.WithCancelCause(context.Background())
	defer abort(nil)
	output := att.passOutput(stdout, stderr, tty, abort)
	go func() {
		write(fake)
		fake.Close()
	}()
	err := <-output
	if !tty && stdout.String() == "out\n" && strings.Contains(stderr.String(), "out") {
		t.Errorf("stderr %q got stdout's output", stderr)
	}
	return err, context.Cause(ctx)
}

func TestPassOutput(t *testing.T) {
	stdout := &lockedBuffer{}
	err, _ := passed(t, func(a *fakeengine.Attachment) {
		_ = a.Stdout("out\n")
		_ = a.Stderr("err\n")
	}, stdout, false)
	if err != nil || stdout.String() != "out\n" {
		t.Errorf("got %v, stdout %q", err, stdout)
	}

	stdout = &lockedBuffer{}
	err, _ = passed(t, func(a *fakeengine.Attachment) { _ = a.Raw("raw\r\n") }, stdout, true)
	if err != nil || stdout.String() != "raw\r\n" {
		t.Errorf("a terminal: got %v, stdout %q", err, stdout)
	}
}

func TestPassOutputEngineErrorFrame(t *testing.T) {
	err, _ := passed(t, func(a *fakeengine.Attachment) {
		_ = a.Stdout("out\n")
		_ = a.Frame(3, "disk full")
	}, &lockedBuffer{}, false)
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "lost the engine's stream") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("got %v", err)
	}
}

type refusingWriter struct{}

func (refusingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

// A refused write aborts the run with that failure, and closes the stream.
func TestPassOutputRefusedWriteAborts(t *testing.T) {
	fake := fakeengine.NewAttachment()
	att := &attachment{conn: fake.Response()}
	ctx, abort := context.WithCancelCause(context.Background())
	output := att.passOutput(refusingWriter{}, refusingWriter{}, false, abort)
	go func() { _ = fake.Stdout("out\n") }()
	err := <-output
	if exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "passing on the build's output: stdout closed") {
		t.Errorf("got %v", err)
	}
	if cause := context.Cause(ctx); cause != err {
		t.Errorf("run aborted with %v, want %v", cause, err)
	}
	if err := fake.Stdout("more\n"); err == nil {
		t.Error("the stream is still open after the refused write")
	}
}

func TestTerminalChecksWithoutATerminal(t *testing.T) {
	if err := checkTerminal(Config{TTY: true, Interactive: true, Stdin: strings.NewReader("")}); err == nil || !strings.Contains(err.Error(), "not a TTY") {
		t.Errorf("-it with piped input: got %v", err)
	}
	if err := checkTerminal(Config{TTY: true, Stdin: strings.NewReader("")}); err != nil {
		t.Errorf("-t alone: got %v", err)
	}
	restore, err := rawTerminal(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	restore()
	if _, ok := asTerminal(&lockedBuffer{}); ok {
		t.Error("a buffer is a terminal")
	}
}

// An interactive build gets its input, and its end.
func TestLifecycleInteractiveInput(t *testing.T) {
	e := fakeengine.New(t)
	b := e.Runs(&fakeengine.Build{UntilSignalled: true})
	start := e.ContainerStartFunc
	var got []byte
	e.ContainerStartFunc = func(ctx context.Context, id string, o container.StartOptions) error {
		att := b.Attachment()
		go func() {
			buf := make([]byte, 64)
			n, _ := att.Input().Read(buf)
			got = buf[:n]
			b.Exit(0)
		}()
		return start(ctx, id, o)
	}
	r := newFakeRun()
	r.cfg.Interactive = true
	r.cfg.Stdin = strings.NewReader("input line\n")
	res, err := r.run(t, context.Background(), e)
	if err != nil || res.ExitCode != 0 || string(got) != "input line\n" {
		t.Errorf("got %v, %v; the build read %q", res, err, got)
	}
}
