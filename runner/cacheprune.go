package runner

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/rs/zerolog"
)

// CacheInfo describes one cache volume.
type CacheInfo struct {
	Volume string
	Key    string // the job
	Path   string
	Slot   int
	// Size is in bytes, -1 when not measured (the engine measures local
	// volumes only, and only when asked for disk usage).
	Size  int64
	InUse bool // a container, running or not, mounts it
	// LastUsed is the last run on this machine that used it, or, with
	// LastUsedKnown false, when the volume was created.
	LastUsed      time.Time
	LastUsedKnown bool
}

// ListCaches returns the cache volumes that every one of labels selects,
// least recently used first. withSizes asks the engine
// for disk usage, which makes it measure every volume (and, before API 1.42,
// images and containers too): slow on a full engine.
func ListCaches(ctx context.Context, api Engine, labels []LabelFilter, withSizes bool, log zerolog.Logger) ([]CacheInfo, error) {
	labels = append([]LabelFilter{{Key: LabelCache, Value: "true"}}, labels...)
	scope := filters.NewArgs()
	for _, l := range labels {
		scope.Add("label", l.engineForm())
	}
	list, err := api.VolumeList(ctx, volume.ListOptions{Filters: scope})
	if err != nil {
		return nil, toolFailure("listing caches: %w", err)
	}
	usage := map[string]*volume.UsageData{}
	if withSizes && len(list.Volumes) > 0 {
		du, err := measureVolumes(ctx, api, log)
		if err != nil {
			return nil, err
		}
		for _, v := range du.Volumes {
			usage[v.Name] = v.UsageData
		}
	}
	var caches []CacheInfo
	for _, v := range list.Volumes {
		if !matchesAll(v.Labels, labels) {
			continue
		}
		c := CacheInfo{Volume: v.Name, Key: v.Labels[LabelCacheKey], Path: v.Labels[LabelCachePath], Size: -1}
		c.Slot, _ = strconv.Atoi(v.Labels[LabelCacheSlot])
		if u := usage[v.Name]; u != nil {
			c.Size = u.Size
			c.InUse = u.RefCount > 0
		}
		if t, ok := cacheLastUsed(v.Name); ok {
			c.LastUsed, c.LastUsedKnown = t, true
		} else if t, err := time.Parse(time.RFC3339, v.CreatedAt); err == nil {
			c.LastUsed = t
		}
		caches = append(caches, c)
	}
	sort.SliceStable(caches, func(i, j int) bool { return caches[i].LastUsed.Before(caches[j].LastUsed) })
	return caches, nil
}

// PruneOptions says which caches PruneCaches removes; a cache goes when any
// of them selects it.
type PruneOptions struct {
	All       bool
	OlderThan time.Duration // last used longer ago than this; 0 for no such limit
	MaxSize   int64         // keep the most recently used caches within this many bytes; -1 for no budget
	Labels    []LabelFilter // only caches that all of these select
	DryRun    bool
}

// PruneCaches removes the caches that opts select and returns them. A cache
// in use by a container is kept (the engine refuses to remove it) and left out
// of the result; with a size budget it still counts against the budget.
func PruneCaches(ctx context.Context, api Engine, opts PruneOptions, log zerolog.Logger) ([]CacheInfo, error) {
	caches, err := ListCaches(ctx, api, opts.Labels, opts.MaxSize >= 0, log)
	if err != nil {
		return nil, err
	}
	var removed []CacheInfo
	for _, c := range choosePrune(caches, opts, time.Now()) {
		if !opts.DryRun {
			err := api.VolumeRemove(ctx, c.Volume, false)
			if cerrdefs.IsConflict(err) {
				log.Warn().Str("volume", c.Volume).Msg("keeping a cache that a container uses")
				continue
			}
			if err != nil && !cerrdefs.IsNotFound(err) {
				return removed, toolFailure("removing cache %s: %w", c.Volume, err)
			}
			forgetCache(c.Volume)
		}
		removed = append(removed, c)
	}
	return removed, nil
}

// choosePrune picks from caches (least recently used first) those that opts
// select at now. A budget drops the least recently used until the rest fit;
// caches in use cannot go, so they count as kept.
func choosePrune(caches []CacheInfo, opts PruneOptions, now time.Time) []CacheInfo {
	var total int64
	for _, c := range caches {
		total += max(c.Size, 0)
	}
	var chosen []CacheInfo
	for _, c := range caches {
		drop := opts.All ||
			(opts.OlderThan > 0 && now.Sub(c.LastUsed) > opts.OlderThan) ||
			(opts.MaxSize >= 0 && total > opts.MaxSize)
		if !drop || c.InUse {
			continue
		}
		chosen = append(chosen, c)
		total -= max(c.Size, 0)
	}
	return chosen
}

// diskUsageBusyWait bounds the wait for the engine's disk usage while
// another client has it measured: the engine measures for one client at a
// time and refuses the others ("a disk usage operation is already
// running"), and on a full engine a measurement takes minutes.
var diskUsageBusyWait = 2 * time.Minute

// diskUsageRetry is how often a refused measurement is asked for again.
var diskUsageRetry = time.Second

// measureVolumes asks the engine for its volumes' disk usage, waiting (up
// to diskUsageBusyWait, with one line that says so) while another client's
// measurement keeps the engine busy.
func measureVolumes(ctx context.Context, api Engine, log zerolog.Logger) (types.DiskUsage, error) {
	deadline := time.Now().Add(diskUsageBusyWait)
	said := false
	for {
		du, err := api.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.VolumeObject}})
		if err == nil || !strings.Contains(err.Error(), "disk usage operation is already running") {
			if err != nil {
				return du, toolFailure("measuring caches: %w", err)
			}
			return du, nil
		}
		if time.Now().After(deadline) {
			return du, toolFailure("measuring caches: the engine at %s was still measuring disk usage for another client after %s; try again later", api.DaemonHost(), diskUsageBusyWait)
		}
		if !said {
			log.Info().Stringer("up_to", diskUsageBusyWait).Msg("the engine is measuring disk usage for another client (docker system df, another cache ls); waiting for it to finish")
			said = true
		}
		select {
		case <-ctx.Done():
			return du, context.Cause(ctx)
		case <-time.After(diskUsageRetry):
		}
	}
}
