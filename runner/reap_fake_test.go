package runner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/fakeengine"
)

func ownedBy(o string, extra ...string) map[string]string {
	labels := map[string]string{LabelManaged: "true", LabelOwner: o, LabelOwnerPID: "1", LabelOwnerStart: "no such start"}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	return labels
}

func id64(c byte) string { return strings.Repeat(string(c), 64) }

// orphanEngine is an engine with siblings and networks of owners alive and
// gone: a container owner that is gone, one that runs, another host's
// process, a kept sibling, and a process of this namespace that is gone.
func orphanEngine(t *testing.T, me owner) (*fakeengine.Engine, *[]string) {
	e := fakeengine.New(t)
	var mu sync.Mutex
	removed := &[]string{}
	e.ContainerListFunc = func(context.Context, container.ListOptions) ([]container.Summary, error) {
		now := time.Now().Unix()
		return []container.Summary{
			{ID: id64('a'), Names: []string{"/gone-owner"}, Labels: ownedBy("container:" + id64('0')), Created: now},
			{ID: id64('b'), Labels: ownedBy("container:" + id64('1')), Created: now},
			{ID: id64('c'), Labels: ownedBy("host:elsewhere"), Created: now},
			{ID: id64('d'), Labels: ownedBy("container:"+id64('0'), LabelKeep, "true"), Created: now},
			{ID: id64('e'), Labels: ownedBy(me.ID, LabelBuildKey, "PLAN-JOB"), Created: now},
		}, nil
	}
	e.ContainerInspectFunc = func(_ context.Context, id string) (container.InspectResponse, error) {
		if id == id64('0') {
			return container.InspectResponse{}, cerrdefs.ErrNotFound
		}
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Running: true, StartedAt: "2000-01-01T00:00:00Z"}}}, nil
	}
	e.ContainerRemoveFunc = func(_ context.Context, id string, _ container.RemoveOptions) error {
		mu.Lock()
		defer mu.Unlock()
		*removed = append(*removed, id[:1])
		return nil
	}
	e.NetworkListFunc = func(context.Context, network.ListOptions) ([]network.Summary, error) {
		return []network.Summary{
			{ID: id64('n'), Name: "sibling-run-net", Labels: ownedBy("container:" + id64('0')), Created: time.Now()},
			{ID: id64('m'), Name: "live-net", Labels: ownedBy("host:elsewhere")},
		}, nil
	}
	e.NetworkRemoveFunc = func(_ context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		*removed = append(*removed, id[:1])
		return nil
	}
	// Run volumes of a remote engine: one whose owner is gone, one of a
	// live owner; and a cache volume of the gone owner, which reap must
	// never take for a run volume.
	e.VolumeListFunc = func(context.Context, volume.ListOptions) (volume.ListResponse, error) {
		gone := ownedBy("container:"+id64('0'), LabelRole, roleWorkdir)
		return volume.ListResponse{Volumes: []*volume.Volume{
			{Name: "v-sibling-run-job-workdir", Labels: gone, CreatedAt: time.Now().Format(time.RFC3339)},
			{Name: "w-live", Labels: ownedBy("host:elsewhere", LabelRole, roleWorkdir)},
			{Name: "c-cache", Labels: ownedBy("container:"+id64('0'), LabelCache, "true")},
		}}, nil
	}
	e.VolumeRemoveFunc = func(_ context.Context, name string, _ bool) error {
		mu.Lock()
		defer mu.Unlock()
		*removed = append(*removed, name[:1])
		return nil
	}
	return e, removed
}

func TestReapRemovesOnlyOrphans(t *testing.T) {
	me := owner{ID: "host:test-reaper"}
	e, removed := orphanEngine(t, me)
	reaped, err := reap(context.Background(), e, me, reapScope{}, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(*removed, []string{"a", "e", "n", "v"}) {
		t.Errorf("removed %v, want a (owner container gone), e (owner process gone), n (its network), v (its working-directory volume)", *removed)
	}
	if len(reaped) != 4 || reaped[0].Name != "gone-owner" || reaped[1].BuildKey != "PLAN-JOB" || !reaped[2].Network || !reaped[3].Volume {
		t.Errorf("reaped %+v", reaped)
	}
}

func TestReapDryRunRemovesNothing(t *testing.T) {
	me := owner{ID: "host:test-reaper"}
	e, removed := orphanEngine(t, me)
	reaped, err := reap(context.Background(), e, me, reapScope{}, true, zerolog.Nop())
	if err != nil || len(reaped) != 4 || len(*removed) != 0 {
		t.Errorf("got %d reaped, %v removed, %v", len(reaped), *removed, err)
	}
}

func TestReapFailures(t *testing.T) {
	me := owner{ID: "host:test-reaper"}
	e, _ := orphanEngine(t, me)
	e.Fail("ContainerRemove", errors.New("device busy"))
	e.Fail("NetworkList", errors.New("engine hiccup"))
	_, err := reap(context.Background(), e, me, reapScope{}, false, zerolog.Nop())
	var failures *ReapFailures
	if !errors.As(err, &failures) || len(failures.Failures) != 3 || failures.ExitCode() != ExitToolFailure {
		t.Fatalf("got %v, want three failures", err)
	}
	if !strings.Contains(err.Error(), "device busy") || !strings.Contains(err.Error(), "listing build networks") {
		t.Errorf("the error does not name the failures: %v", err)
	}

	e.Fail("ContainerList", errors.New("engine down"))
	if _, err := Reap(context.Background(), e, []LabelFilter{{Key: "team", Value: "a"}}, false, zerolog.Nop()); exitCodeOf(err) != ExitToolFailure {
		t.Errorf("a failed list: got %v", err)
	}
}

func TestReapConflictIsAnotherReaper(t *testing.T) {
	me := owner{ID: "host:test-reaper"}
	e, _ := orphanEngine(t, me)
	e.Fail("ContainerRemove", cerrdefs.ErrConflict)
	e.Fail("NetworkRemove", errors.New("in use"))
	e.Fail("VolumeRemove", errors.New("volume is in use"))
	reaped, err := reap(context.Background(), e, me, reapScope{}, false, zerolog.Nop())
	if err != nil || len(reaped) != 0 {
		t.Errorf("got %v, %v; want nothing reaped and no failure", reaped, err)
	}
}

func TestReapOwnOrphansLogs(t *testing.T) {
	me := owner{ID: "host:test-reaper"}
	e, _ := orphanEngine(t, me)
	var log lockedBuffer
	reapOwnOrphans(context.Background(), e, me, zerolog.New(&log))
	if !strings.Contains(log.String(), "removed a sibling whose sibling-run is gone") {
		t.Errorf("log:\n%s", log.String())
	}
	e.Fail("ContainerList", errors.New("engine down"))
	reapOwnOrphans(context.Background(), e, me, zerolog.New(&log))
	if !strings.Contains(log.String(), "clearing this agent's orphaned siblings failed") {
		t.Errorf("log:\n%s", log.String())
	}
}

// TestWatch sweeps at the start, then removes the sibling of an owner
// container as its die event arrives, and watches again after the stream
// breaks.
func TestWatch(t *testing.T) {
	e := fakeengine.New(t)
	var mu sync.Mutex
	ownerAlive := true
	var removed []string
	e.ContainerListFunc = func(context.Context, container.ListOptions) ([]container.Summary, error) {
		return []container.Summary{{ID: id64('s'), Labels: ownedBy("container:" + id64('o')), Created: time.Now().Unix()}}, nil
	}
	e.ContainerInspectFunc = func(context.Context, string) (container.InspectResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Running: ownerAlive, StartedAt: "2000-01-01T00:00:00Z"}}}, nil
	}
	e.ContainerRemoveFunc = func(_ context.Context, id string, _ container.RemoveOptions) error {
		mu.Lock()
		defer mu.Unlock()
		removed = append(removed, id)
		return nil
	}
	e.NetworkListFunc = func(context.Context, network.ListOptions) ([]network.Summary, error) { return nil, nil }
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	sessions := 0
	e.EventsFunc = func(context.Context, events.ListOptions) (<-chan events.Message, <-chan error) {
		mu.Lock()
		defer mu.Unlock()
		sessions++
		return msgs, errs
	}
	ctx, cancel := context.WithCancel(context.Background())
	var log lockedBuffer
	done := make(chan error)
	go func() { done <- Watch(ctx, e, nil, zerolog.New(&log)) }()
	msgs <- events.Message{Action: events.ActionCreate, Actor: events.Actor{ID: id64('t'), Attributes: ownedBy("container:" + id64('o'))}}
	mu.Lock()
	ownerAlive = false
	mu.Unlock()
	msgs <- events.Message{Action: events.ActionDie, Actor: events.Actor{ID: id64('o')}}
	msgs <- events.Message{Action: events.ActionCreate, Actor: events.Actor{ID: id64('u'), Attributes: ownedBy("host:test", LabelKeep, "true")}}
	mu.Lock()
	got := slices.Clone(removed)
	mu.Unlock()
	if len(got) != 1 || got[0] != id64('s') {
		t.Errorf("removed %v, want the owner's sibling once its owner died", got)
	}
	errs <- errors.New("stream broken")
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := sessions
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch returned %v at the end of its context", err)
	}
	if !strings.Contains(log.String(), "lost the engine's event stream") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestListAndPruneCaches(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	e := fakeengine.New(t)
	cache := func(name, created string) *volume.Volume {
		return &volume.Volume{Name: name, CreatedAt: created, Labels: map[string]string{LabelCache: "true", LabelCacheKey: "PLAN-JOB", LabelCachePath: "/root/.cache", LabelCacheSlot: "1"}}
	}
	e.VolumeListFunc = func(context.Context, volume.ListOptions) (volume.ListResponse, error) {
		return volume.ListResponse{Volumes: []*volume.Volume{
			cache("new", "2024-01-02T00:00:00Z"), cache("old", "2024-01-01T00:00:00Z"), cache("used", "2023-01-01T00:00:00Z"),
			{Name: "not-a-cache"},
		}}, nil
	}
	e.DiskUsageFunc = func(context.Context, types.DiskUsageOptions) (types.DiskUsage, error) {
		return types.DiskUsage{Volumes: []*volume.Volume{
			{Name: "new", UsageData: &volume.UsageData{Size: 10}},
			{Name: "old", UsageData: &volume.UsageData{Size: 20}},
			{Name: "used", UsageData: &volume.UsageData{Size: 30, RefCount: 1}},
		}}, nil
	}
	var removed []string
	e.VolumeRemoveFunc = func(_ context.Context, name string, _ bool) error {
		removed = append(removed, name)
		return nil
	}
	caches, err := ListCaches(context.Background(), e, nil, true, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range caches {
		names = append(names, c.Volume)
	}
	if !slices.Equal(names, []string{"used", "old", "new"}) || caches[1].Size != 20 || !caches[0].InUse || caches[2].Key != "PLAN-JOB" {
		t.Errorf("caches %+v", caches)
	}
	pruned, err := PruneCaches(context.Background(), e, PruneOptions{All: true, MaxSize: 1 << 40}, zerolog.Nop())
	if err != nil || len(pruned) != 2 || !slices.Equal(removed, []string{"old", "new"}) {
		t.Errorf("pruned %v, removed %v, %v; want all but the cache in use", pruned, removed, err)
	}

	removed = nil
	e.Fail("VolumeRemove", cerrdefs.ErrConflict)
	if pruned, err := PruneCaches(context.Background(), e, PruneOptions{MaxSize: 0}, zerolog.Nop()); err != nil || len(pruned) != 0 {
		t.Errorf("caches in use: pruned %v, %v", pruned, err)
	}
	e.Fail("VolumeRemove", errors.New("boom"))
	if _, err := PruneCaches(context.Background(), e, PruneOptions{All: true, MaxSize: -1}, zerolog.Nop()); exitCodeOf(err) != ExitToolFailure {
		t.Errorf("a failed removal: %v", err)
	}
	e.Fail("DiskUsage", errors.New("boom"))
	if _, err := ListCaches(context.Background(), e, nil, true, zerolog.Nop()); exitCodeOf(err) != ExitToolFailure {
		t.Errorf("a failed measurement: %v", err)
	}
	e.Fail("VolumeList", errors.New("boom"))
	if _, err := ListCaches(context.Background(), e, nil, false, zerolog.Nop()); exitCodeOf(err) != ExitToolFailure {
		t.Errorf("a failed list: %v", err)
	}
}

// The engine measures disk usage for one client at a time and refuses the
// others; cache ls waits for it, saying so once, and gives up at its bound.
func TestListCachesWaitsForABusyDiskUsage(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	defer func(wait, retry time.Duration) { diskUsageBusyWait, diskUsageRetry = wait, retry }(diskUsageBusyWait, diskUsageRetry)
	diskUsageBusyWait, diskUsageRetry = 200*time.Millisecond, 10*time.Millisecond
	e := fakeengine.New(t)
	e.VolumeListFunc = func(context.Context, volume.ListOptions) (volume.ListResponse, error) {
		return volume.ListResponse{Volumes: []*volume.Volume{{Name: "c", Labels: map[string]string{LabelCache: "true"}}}}, nil
	}
	busy := errors.New("Error response from daemon: a disk usage operation is already running")
	refusals := 3
	e.DiskUsageFunc = func(context.Context, types.DiskUsageOptions) (types.DiskUsage, error) {
		if refusals > 0 {
			refusals--
			return types.DiskUsage{}, busy
		}
		return types.DiskUsage{Volumes: []*volume.Volume{{Name: "c", UsageData: &volume.UsageData{Size: 42}}}}, nil
	}
	var logged strings.Builder
	caches, err := ListCaches(context.Background(), e, nil, true, zerolog.New(&logged))
	if err != nil || len(caches) != 1 || caches[0].Size != 42 {
		t.Fatalf("got %v, %v; want the cache measured once the engine was free", caches, err)
	}
	if n := strings.Count(logged.String(), "measuring disk usage for another client"); n != 1 {
		t.Errorf("said %d times that it waits, want once:\n%s", n, logged.String())
	}
	refusals = 1 << 30
	if _, err := ListCaches(context.Background(), e, nil, true, zerolog.Nop()); exitCodeOf(err) != ExitToolFailure || !strings.Contains(err.Error(), "still measuring disk usage for another client") {
		t.Errorf("an engine busy for good: %v, want a tool failure that says so", err)
	}
}
