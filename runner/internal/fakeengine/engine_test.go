package fakeengine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"sibling-run/runner/internal/fakeengine"
)

func TestUnsetCallNamesItself(t *testing.T) {
	e := fakeengine.New(t)
	err := e.ContainerStart(context.Background(), "x", container.StartOptions{})
	if !errors.Is(err, fakeengine.ErrNotSet) || err.Error() != "fake engine: ContainerStart not set for this test" {
		t.Errorf("got %v", err)
	}
	_, errC := e.ContainerWait(context.Background(), "x", "")
	if err := <-errC; !errors.Is(err, fakeengine.ErrNotSet) {
		t.Errorf("wait: got %v", err)
	}
}

func TestFaults(t *testing.T) {
	e := fakeengine.New(t)
	boom := errors.New("boom")
	e.ContainerKillFunc = func(context.Context, string, string) error { return nil }
	e.Fail("ContainerKill", boom)
	if err := e.ContainerKill(context.Background(), "x", "SIGTERM"); err != boom {
		t.Errorf("failed call: got %v", err)
	}
	e.Drop("ContainerRemove")
	if err := e.ContainerRemove(context.Background(), "x", container.RemoveOptions{}); !client.IsErrConnectionFailed(err) {
		t.Errorf("dropped call: got %v", err)
	}
	e.Stall("ContainerStart")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.ContainerStart(ctx, "x", container.StartOptions{}); err != context.DeadlineExceeded {
		t.Errorf("stalled call: got %v", err)
	}
	want := []string{"ContainerKill", "ContainerRemove", "ContainerStart"}
	if got := e.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

func TestStallReleasedAtTheEnd(t *testing.T) {
	e := fakeengine.New(t)
	e.Stall("ContainerStart")
	done := make(chan error)
	go func() { done <- e.ContainerStart(context.Background(), "x", container.StartOptions{}) }()
	e.Release()
	if err := <-done; !errors.Is(err, fakeengine.ErrReleased) {
		t.Errorf("got %v", err)
	}
}

func TestUnknownCallPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a fault for a call the engine does not have was accepted")
		}
	}()
	fakeengine.New(t).Fail("ContainerStrat", nil)
}
