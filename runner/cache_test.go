package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

func TestCacheNamesAreDeterministicPerJobAndPath(t *testing.T) {
	a := cacheVolumeName("PROJ-PLAN-JOB1", "/root/.m2", 1)
	if a != cacheVolumeName("PROJ-PLAN-JOB1", "/root/.m2", 1) {
		t.Fatal("the same job and path give two names")
	}
	if !strings.HasPrefix(a, "sibling-run-cache-PROJ-PLAN-JOB1-") {
		t.Errorf("name %q does not show the job", a)
	}
	for _, other := range []string{
		cacheVolumeName("PROJ-PLAN-JOB2", "/root/.m2", 1),
		cacheVolumeName("PROJ-PLAN-JOB1", "/root/.gradle", 1),
		cacheVolumeName("PROJ-PLAN-JOB1", "/root/.m2", 2),
	} {
		if other == a {
			t.Errorf("%q names two caches", a)
		}
	}
	if got := cacheVolumeName("dir:/home/me/src/hello world", "/c", 2); !strings.HasPrefix(got, "sibling-run-cache-hello-world-") || !strings.HasSuffix(got, "-2") {
		t.Errorf("a working directory's cache is named %q", got)
	}
	long := cacheVolumeName(strings.Repeat("X", 300), "/c", 1)
	if len(long) > 80 || nameUnsafe.MatchString(long) {
		t.Errorf("name %q is too long or not one the engine takes", long)
	}
}

func TestCacheMountsSharedStayInSlotOne(t *testing.T) {
	p := cachePlan{Key: "K", Caches: []CacheSpec{{Path: "/a"}, {Path: "/b", Shared: true}}}
	if !p.exclusive() {
		t.Fatal("a plan with an unshared cache needs a lease")
	}
	m := p.mounts(3)
	if m[0].Source != cacheVolumeName("K", "/a", 3) || m[1].Source != cacheVolumeName("K", "/b", 1) {
		t.Errorf("slot 3 mounts %s and %s", m[0].Source, m[1].Source)
	}
	if m[0].VolumeOptions != nil || m[0].Target != "/a" {
		t.Errorf("mount %+v: want the volume by name at /a, the image's content copied (no NoCopy)", m[0])
	}
	v := p.volumes(3)
	if v[0].Name != m[0].Source || v[0].Labels[LabelCache] != "true" || v[0].Labels[LabelCacheSlot] != "3" || v[0].Labels[LabelManaged] != "" {
		t.Errorf("volume %+v: want cache labels, slot 3, no owner labels", v[0])
	}
	if p.leaseName(1) == p.leaseName(2) || p.leaseName(1) != (cachePlan{Key: "K"}).leaseName(1) {
		t.Error("leases must be one name per job and slot")
	}
	if (cachePlan{Caches: []CacheSpec{{Path: "/b", Shared: true}}}).exclusive() {
		t.Error("shared caches alone need no lease")
	}
}

func TestChoosePrune(t *testing.T) {
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	caches := []CacheInfo{ // least recently used first
		{Volume: "a", Size: 100, LastUsed: now.Add(-72 * time.Hour)},
		{Volume: "b", Size: 200, LastUsed: now.Add(-48 * time.Hour), InUse: true},
		{Volume: "c", Size: 300, LastUsed: now.Add(-2 * time.Hour)},
		{Volume: "d", Size: 400, LastUsed: now},
	}
	for _, tc := range []struct {
		name string
		opts PruneOptions
		want string
	}{
		{"all but the one in use", PruneOptions{All: true, MaxSize: -1}, "a c d"},
		{"older than a day", PruneOptions{OlderThan: 24 * time.Hour, MaxSize: -1}, "a"},
		{"budget drops the least recently used", PruneOptions{MaxSize: 700}, "a c"},
		{"budget already met", PruneOptions{MaxSize: 1000}, ""},
		{"budget of nothing", PruneOptions{MaxSize: 0}, "a c d"},
		{"age or budget", PruneOptions{OlderThan: time.Hour, MaxSize: 10000}, "a c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range choosePrune(caches, tc.opts, now) {
				got = append(got, c.Volume)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestPlanCachesRefusesBadPaths(t *testing.T) {
	for _, caches := range [][]CacheSpec{
		{{Path: "rel"}}, {{Path: "/"}}, {{Path: "/a/../b"}}, {{Path: "/a"}, {Path: "/a", Shared: true}},
	} {
		if _, err := planCaches(Config{Caches: caches}, "/w"); err == nil {
			t.Errorf("%+v accepted", caches)
		}
	}
	p, err := planCaches(Config{Caches: []CacheSpec{{Path: "/a"}}, Labels: map[string]string{"x": "1"}}, "/w")
	if err != nil || p.Key != "dir:/w" || p.Labels["x"] != "1" {
		t.Errorf("plan %+v, %v: want the working directory as key and the run's labels", p, err)
	}
}

func TestWithCacheSlotMovesOnlyTheCaches(t *testing.T) {
	p := cachePlan{Key: "K", Caches: []CacheSpec{{Path: "/a"}, {Path: "/s", Shared: true}}}
	mounts := append([]mount.Mount{{Type: mount.TypeBind, Source: "/w", Target: "/w"}}, p.mounts(1)...)
	mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: "mine", Target: "/v"})
	sp := spec{Name: p.leaseName(1), HostConfig: &container.HostConfig{Mounts: mounts}, caches: p}
	moved := withCacheSlot(sp, 2)
	var got []string
	for _, m := range moved.HostConfig.Mounts {
		got = append(got, m.Source)
	}
	want := []string{"/w", cacheVolumeName("K", "/a", 2), cacheVolumeName("K", "/s", 1), "mine"}
	if strings.Join(got, " ") != strings.Join(want, " ") || moved.Name != p.leaseName(2) {
		t.Errorf("slot 2: %v named %s, want %v named %s", got, moved.Name, want, p.leaseName(2))
	}
	if sp.HostConfig.Mounts[1].Source != cacheVolumeName("K", "/a", 1) {
		t.Error("moving to a slot changed the spec it was given")
	}
}

func TestMatchesAllNeedsEveryOne(t *testing.T) {
	labels := map[string]string{LabelCache: "true", "team": "a", "flag": ""}
	is := func(k, v string) LabelFilter { return LabelFilter{Key: k, Value: v} }
	has := func(k string) LabelFilter { return LabelFilter{Key: k, AnyValue: true} }
	for _, tc := range []struct {
		want []LabelFilter
		has  bool
	}{
		{[]LabelFilter{is(LabelCache, "true"), is("team", "a")}, true},
		{[]LabelFilter{has("team"), has("flag")}, true},
		{[]LabelFilter{is("flag", "")}, true},
		{[]LabelFilter{is("team", "")}, false},                          // an empty value is a value
		{[]LabelFilter{is(LabelCache, "true"), is("team", "b")}, false}, // Podman's filter would list it
		{[]LabelFilter{has("other")}, false},
		{nil, true},
	} {
		if got := matchesAll(labels, tc.want); got != tc.has {
			t.Errorf("matchesAll(%+v) = %v, want %v", tc.want, got, tc.has)
		}
	}
}
