package fakeengine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Attachment is one attach's connection: the client's end is the
// types.HijackedResponse that ContainerAttach returns, the engine's end is
// written with Stdout and Stderr (multiplexed as the engine does without a
// terminal) or Raw (with one) and ended with Close.
type Attachment struct {
	client, engine net.Conn
	mu             sync.Mutex // one frame at a time
}

// NewAttachment returns an attachment backed by a net.Pipe.
func NewAttachment() *Attachment {
	c, e := net.Pipe()
	return &Attachment{client: c, engine: e}
}

// Response is what ContainerAttach answers.
func (a *Attachment) Response() types.HijackedResponse {
	return types.HijackedResponse{Conn: a.client, Reader: bufio.NewReader(a.client)}
}

// Stdout writes p as one frame of the container's stdout.
func (a *Attachment) Stdout(p string) error { return a.frame(stdcopy.Stdout, p) }

// Stderr writes p as one frame of the container's stderr.
func (a *Attachment) Stderr(p string) error { return a.frame(stdcopy.Stderr, p) }

// Frame writes p as one frame of stream: 1 stdout, 2 stderr, 3 the
// engine's own error, which ends the stream for the client.
func (a *Attachment) Frame(stream stdcopy.StdType, p string) error { return a.frame(stream, p) }

func (a *Attachment) frame(stream stdcopy.StdType, p string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := io.WriteString(stdcopy.NewStdWriter(a.engine, stream), p)
	return err
}

// Raw writes p unframed, as the engine does for a terminal.
func (a *Attachment) Raw(p string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := io.WriteString(a.engine, p)
	return err
}

// Input is the engine's end, from which the container's stdin is read.
func (a *Attachment) Input() io.Reader { return a.engine }

// Close ends the stream, as the engine does once the container has exited
// and all its output is sent.
func (a *Attachment) Close() error { return a.engine.Close() }

// Build is one container's life on the fake engine: created, attached to,
// started, it writes Stdout and Stderr and exits with ExitCode, or, with
// UntilSignalled, runs until a signal ends it.
type Build struct {
	ID       string // the container's id; a fixed 64-digit one when ""
	Stdout   string
	Stderr   string
	ExitCode int64
	// UntilSignalled keeps the build running after its output until a
	// signal ends it (exit 128+n); IgnoreSIGTERM makes SIGTERM not end it.
	UntilSignalled bool
	IgnoreSIGTERM  bool

	mu      sync.Mutex
	att     *Attachment
	waits   []chan container.WaitResponse
	exited  *container.WaitResponse
	started bool
}

// DefaultID is the id of a Build that names none.
const DefaultID = "f00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dfacef00dface"

// Runs sets e's container calls (create, attach, wait, start, kill,
// inspect, remove) to run b, and returns b. A test then overrides or
// faults the calls it is about.
func (e *Engine) Runs(b *Build) *Build {
	if b.ID == "" {
		b.ID = DefaultID
	}
	e.ContainerCreateFunc = func(context.Context, *container.Config, *container.HostConfig, *network.NetworkingConfig, *ocispec.Platform, string) (container.CreateResponse, error) {
		return container.CreateResponse{ID: b.ID}, nil
	}
	e.ContainerAttachFunc = func(context.Context, string, container.AttachOptions) (types.HijackedResponse, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.att = NewAttachment()
		return b.att.Response(), nil
	}
	e.ContainerWaitFunc = func(ctx context.Context, _ string, _ container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
		return b.wait(ctx)
	}
	e.ContainerStartFunc = func(context.Context, string, container.StartOptions) error {
		b.start()
		return nil
	}
	e.ContainerKillFunc = func(_ context.Context, _ string, signal string) error {
		return b.signal(signal)
	}
	e.ContainerInspectFunc = func(context.Context, string) (container.InspectResponse, error) {
		return b.inspect(), nil
	}
	e.ContainerRemoveFunc = func(context.Context, string, container.RemoveOptions) error {
		b.end(137)
		return nil
	}
	return b
}

// Attachment is the build's current attachment, nil before the attach.
func (b *Build) Attachment() *Attachment {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.att
}

// Exit ends the build with code, as its own exit would: the stream ends,
// then the exit is reported.
func (b *Build) Exit(code int64) { b.end(code) }

func (b *Build) wait(ctx context.Context) (<-chan container.WaitResponse, <-chan error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, errC := make(chan container.WaitResponse, 1), make(chan error, 1)
	if b.exited != nil {
		c <- *b.exited
		return c, errC
	}
	b.waits = append(b.waits, c)
	go func() {
		<-ctx.Done()
		errC <- ctx.Err()
	}()
	return c, errC
}

func (b *Build) start() {
	b.mu.Lock()
	att := b.att
	b.started = true
	b.mu.Unlock()
	go func() {
		if att != nil {
			if b.Stdout != "" {
				_ = att.Stdout(b.Stdout)
			}
			if b.Stderr != "" {
				_ = att.Stderr(b.Stderr)
			}
		}
		if !b.UntilSignalled {
			b.end(b.ExitCode)
		}
	}()
}

func (b *Build) signal(name string) error {
	b.mu.Lock()
	running := b.started && b.exited == nil
	b.mu.Unlock()
	if !running {
		return fmt.Errorf("fake engine: container %s is not running: conflict", b.ID)
	}
	sig := unix.SignalNum(strings.ToUpper(name))
	if sig == 0 {
		return fmt.Errorf("fake engine: no signal %q", name)
	}
	if sig == unix.SIGTERM && b.IgnoreSIGTERM {
		return nil
	}
	go b.end(128 + int64(sig))
	return nil
}

// end ends the build's stream, then reports its exit, once.
func (b *Build) end(code int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.exited != nil {
		return
	}
	if b.att != nil {
		_ = b.att.Close()
	}
	b.exited = &container.WaitResponse{StatusCode: code}
	for _, c := range b.waits {
		c <- *b.exited
	}
	b.waits = nil
}

func (b *Build) inspect() container.InspectResponse {
	b.mu.Lock()
	defer b.mu.Unlock()
	state := &container.State{Running: b.started && b.exited == nil}
	if b.exited != nil {
		state.ExitCode = int(b.exited.StatusCode)
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: b.ID, State: state, HostConfig: &container.HostConfig{}}}
}
