// Package fakeengine is an engine for runner's unit tests. It stands where
// the Docker client stands (runner.Engine) and answers each call with the
// function a test set for it; a call the test did not set fails with an
// error that names it (ErrNotSet). Any call can be made to fail, to stall
// until its context ends, or to drop the connection, and the engine records
// the order of the calls it got. Attachment and Build model one container's
// stream and life for the lifecycle's tests.
//
// Only tests import it.
package fakeengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrNotSet is the error of a call whose function the test did not set.
var ErrNotSet = errors.New("not set for this test")

// ErrReleased is the error of a stalled call that the test's end released.
var ErrReleased = errors.New("fake engine: released at the end of the test")

// Host is the address a fake engine reports unless the test sets another.
const Host = "unix:///fake/docker.sock"

// Engine is a fake Docker engine. Set the function of each call a test
// needs before the code under test runs; the engine is safe for concurrent
// calls, but its functions must not be changed while calls are under way.
type Engine struct {
	Host       string // DaemonHost's answer; Host when ""
	APIVersion string // ClientVersion's answer; "1.41" when ""

	PingFunc              func(ctx context.Context) (types.Ping, error)
	ServerVersionFunc     func(ctx context.Context) (types.Version, error)
	InfoFunc              func(ctx context.Context) (system.Info, error)
	DiskUsageFunc         func(ctx context.Context, options types.DiskUsageOptions) (types.DiskUsage, error)
	EventsFunc            func(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ContainerCreateFunc   func(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	ContainerAttachFunc   func(ctx context.Context, id string, options container.AttachOptions) (types.HijackedResponse, error)
	ContainerStartFunc    func(ctx context.Context, id string, options container.StartOptions) error
	ContainerWaitFunc     func(ctx context.Context, id string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	ContainerKillFunc     func(ctx context.Context, id, signal string) error
	ContainerResizeFunc   func(ctx context.Context, id string, options container.ResizeOptions) error
	ContainerInspectFunc  func(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerListFunc     func(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerLogsFunc     func(ctx context.Context, id string, options container.LogsOptions) (io.ReadCloser, error)
	ContainerRemoveFunc   func(ctx context.Context, id string, options container.RemoveOptions) error
	CopyFromContainerFunc func(ctx context.Context, id, srcPath string) (io.ReadCloser, container.PathStat, error)
	CopyToContainerFunc   func(ctx context.Context, id, path string, content io.Reader, options container.CopyToContainerOptions) error
	ImageInspectFunc      func(ctx context.Context, image string, options ...client.ImageInspectOption) (image.InspectResponse, error)
	ImagePullFunc         func(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
	NetworkCreateFunc     func(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkInspectFunc    func(ctx context.Context, network string, options network.InspectOptions) (network.Inspect, error)
	NetworkListFunc       func(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkRemoveFunc     func(ctx context.Context, network string) error
	VolumeCreateFunc      func(ctx context.Context, options volume.CreateOptions) (volume.Volume, error)
	VolumeInspectFunc     func(ctx context.Context, volumeID string) (volume.Volume, error)
	VolumeListFunc        func(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeRemoveFunc      func(ctx context.Context, volumeID string, force bool) error

	mu       sync.Mutex
	calls    []string
	faults   map[string]fault
	before   map[string]func()
	released chan struct{}
	release  sync.Once
}

// New returns an engine with no call set. Calls it stalls are released
// when t ends, so that no goroutine outlives the test.
func New(t testing.TB) *Engine {
	e := &Engine{}
	t.Cleanup(e.Release)
	return e
}

// calls are the names of the calls the engine answers, which Fail, Stall,
// Drop and Before take.
var callNames = []string{
	"Ping", "ServerVersion", "Info", "DiskUsage", "Events",
	"ContainerCreate", "ContainerAttach", "ContainerStart", "ContainerWait",
	"ContainerKill", "ContainerResize", "ContainerInspect", "ContainerList",
	"ContainerLogs", "ContainerRemove", "CopyFromContainer", "CopyToContainer",
	"ImageInspect", "ImagePull",
	"NetworkCreate", "NetworkInspect", "NetworkList", "NetworkRemove",
	"VolumeCreate", "VolumeInspect", "VolumeList", "VolumeRemove",
}

type faultKind int

const (
	failing faultKind = iota + 1
	stalling
	dropping
)

type fault struct {
	kind faultKind
	err  error
}

// Fail makes every later call named call fail with err.
func (e *Engine) Fail(call string, err error) { e.setFault(call, fault{failing, err}) }

// Stall makes every later call named call answer only once its context
// ends (then with the context's error), as an engine that stopped
// answering does. A call on a context that never ends stalls until the
// test ends.
func (e *Engine) Stall(call string) { e.setFault(call, fault{kind: stalling}) }

// Drop makes every later call named call fail as the Docker client does
// when the engine went away: with an error for which
// client.IsErrConnectionFailed is true.
func (e *Engine) Drop(call string) { e.setFault(call, fault{kind: dropping}) }

// Before runs f when a call named call arrives, before it is answered: to
// cancel a context at that step, say.
func (e *Engine) Before(call string, f func()) {
	mustBeCall(call)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.before == nil {
		e.before = map[string]func(){}
	}
	e.before[call] = f
}

func (e *Engine) setFault(call string, f fault) {
	mustBeCall(call)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults == nil {
		e.faults = map[string]fault{}
	}
	e.faults[call] = f
}

func mustBeCall(call string) {
	if !slices.Contains(callNames, call) {
		panic(fmt.Sprintf("fakeengine: no call named %q", call))
	}
}

// Calls returns the names of the calls the engine got, in order.
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// Release ends every stalled call; New arranges it for the test's end.
func (e *Engine) Release() {
	e.mu.Lock()
	if e.released == nil {
		e.released = make(chan struct{})
	}
	done := e.released
	e.mu.Unlock()
	e.release.Do(func() { close(done) })
}

// ConnectionFailed returns the error the Docker client returns when it
// cannot reach the engine at host.
func ConnectionFailed(host string) error {
	// The client builds this error unexported; the deprecated constructor
	// is the only way to make the same one outside the client (v28).
	//lint:ignore SA1019 it makes the client's own error, which IsErrConnectionFailed recognises
	return client.ErrorConnectionFailed(host)
}

// enter records call and applies its fault or Before function; a non-nil
// error is the call's answer.
func (e *Engine) enter(ctx context.Context, call string) error {
	e.mu.Lock()
	e.calls = append(e.calls, call)
	f, before := e.faults[call], e.before[call]
	if e.released == nil {
		e.released = make(chan struct{})
	}
	released := e.released
	e.mu.Unlock()
	if before != nil {
		before()
	}
	switch f.kind {
	case failing:
		return f.err
	case dropping:
		return ConnectionFailed(e.DaemonHost())
	case stalling:
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-released:
			return ErrReleased
		}
	}
	return nil
}

func notSet(call string) error {
	return fmt.Errorf("fake engine: %s %w", call, ErrNotSet)
}

// DaemonHost returns e.Host, or Host.
func (e *Engine) DaemonHost() string {
	if e.Host == "" {
		return Host
	}
	return e.Host
}

// ClientVersion returns e.APIVersion, or "1.41".
func (e *Engine) ClientVersion() string {
	if e.APIVersion == "" {
		return "1.41"
	}
	return e.APIVersion
}

// HTTPClient returns a client whose every request fails, as the fake
// engine speaks no HTTP.
func (e *Engine) HTTPClient() *http.Client {
	return &http.Client{Transport: refusingTransport{}}
}

type refusingTransport struct{}

func (refusingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("fake engine: no HTTP")
}
