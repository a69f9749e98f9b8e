package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"sibling-run/runner"
)

// cacheCase is the label that scopes one test's caches: every run of the
// test passes it, so its caches carry it, and `cache ls/prune` take it.
func cacheCase(t *testing.T) string {
	t.Helper()
	label := "sibling-run-test.case=" + strings.ToLower(t.Name()) + "-" + runID
	t.Cleanup(func() {
		// The caches outlive their runs by design; the test removes its own.
		r := siblingRun(t, t.TempDir(), nil, "cache", "prune", "--all", "--label", testLabel, "--label", label)
		if r.code != 0 {
			t.Errorf("pruning the test's caches: exit %d, %s", r.code, r.stderr)
		}
	})
	return label
}

// nonRootDir is a working directory owned by uid 4242, which builds there run as.
func nonRootDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chown(dir, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cacheVolumes lists the cache volumes carrying all labels.
func cacheVolumes(t *testing.T, labels ...string) []*volume.Volume {
	t.Helper()
	return volumesWith(t, runner.LabelCache+"=true", labels...)
}

// volumesWith lists the volumes carrying the label first and all labels.
// The engine filters by the first only: Podman 4.3 lists volumes that match
// any one of several label filters.
func volumesWith(t *testing.T, first string, labels ...string) []*volume.Volume {
	t.Helper()
	args := filters.NewArgs(filters.Arg("label", first))
	list, err := api.VolumeList(context.Background(), volume.ListOptions{Filters: args})
	if err != nil {
		t.Fatal(err)
	}
	var vols []*volume.Volume
	for _, v := range list.Volumes {
		all := true
		for _, l := range labels {
			key, value, _ := strings.Cut(l, "=")
			all = all && v.Labels[key] == value
		}
		if all {
			vols = append(vols, v)
		}
	}
	return vols
}

func mustRun(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	r := siblingRun(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("sibling-run %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// A cache keeps its path between builds of one job, wherever the job's
// working directory is; it starts with what the image holds there; a
// non-root build can write both a path the image has and one it lacks;
// another job, or another working directory without Bamboo, sees its own;
// and reap leaves caches alone.
func TestCacheKeepsAPathBetweenBuildsOfOneJobOnly(t *testing.T) {
	img := serviceImage(t, "seeded", "RUN mkdir /seed && echo seeded > /seed/file")
	label := cacheCase(t)
	job := []string{"bamboo_buildKey=TEST-" + runID + "-JOB1"}
	args := func(cmd string) []string {
		return []string{"--image", img, "--label", testLabel, "--label", label, "--cache", "/seed", "--cache", "/fresh", "sh", "-c", cmd}
	}

	out := mustRun(t, nonRootDir(t), job, args("id -u; cat /seed/file; echo kept > /seed/mine; echo kept > /fresh/mine; echo ok")...)
	if want := "4242\nseeded\nok\n"; out != want {
		t.Fatalf("first build printed %q, want %q (uid, the image's file, both caches writable)", out, want)
	}
	out = mustRun(t, nonRootDir(t), job, args("cat /seed/file /seed/mine /fresh/mine")...)
	if want := "seeded\nkept\nkept\n"; out != want {
		t.Errorf("the job's next build, in a new working directory, printed %q, want %q", out, want)
	}
	other := []string{"bamboo_buildKey=TEST-" + runID + "-JOB2"}
	out = mustRun(t, nonRootDir(t), other, args("cat /seed/file; ls /fresh; ls /seed")...)
	if want := "seeded\nfile\n"; out != want {
		t.Errorf("another job's build printed %q, want %q: only what the image holds", out, want)
	}

	// Without Bamboo, a cache belongs to the working directory.
	dir := nonRootDir(t)
	mustRun(t, dir, nil, args("echo here > /fresh/mine")...)
	if out := mustRun(t, dir, nil, args("cat /fresh/mine")...); out != "here\n" {
		t.Errorf("the next build in the same directory printed %q, want here", out)
	}
	if out := mustRun(t, nonRootDir(t), nil, args("ls /fresh")...); out != "" {
		t.Errorf("a build in another directory sees %q in its cache, want nothing", out)
	}

	vols := cacheVolumes(t, label)
	if len(vols) != 8 { // 2 jobs and 2 working directories, × 2 paths
		t.Errorf("%d cache volumes, want 8", len(vols))
	}
	for _, v := range vols {
		if _, managed := v.Labels[runner.LabelManaged]; managed || v.Labels[runner.LabelOwner] != "" {
			t.Errorf("cache %s carries owner labels %v; reap must not take it for a sibling's", v.Name, v.Labels)
		}
		if v.Labels[runner.LabelCachePath] == "" || v.Labels[runner.LabelCacheKey] == "" || !strings.HasPrefix(v.Name, "sibling-run-cache-") {
			t.Errorf("cache %s lacks its name or labels: %v", v.Name, v.Labels)
		}
	}
	if r := siblingRun(t, dir, nil, "reap", "--label", testLabel); r.code != 0 {
		t.Fatalf("reap: exit %d, %s", r.code, r.stderr)
	}
	if after := cacheVolumes(t, label); len(after) != len(vols) {
		t.Errorf("reap removed caches: %d left of %d", len(after), len(vols))
	}
}

// Two builds of one job at once get a cache each, unless the cache is
// :shared; the second's is kept for the next time two run at once.
func TestCacheOfBuildsRunningAtOnce(t *testing.T) {
	label := cacheCase(t)
	for _, tc := range []struct {
		cache, secondSees string
		volumes           int
	}{
		{"/c", "empty", 2},
		{"/c:shared", "first", 1},
	} {
		t.Run(tc.cache, func(t *testing.T) {
			dir := t.TempDir() // the job, without Bamboo
			first, stderr := startSiblingRun(t, dir, buildArgs("--label", label, "--cache", tc.cache,
				"sh", "-c", "echo first > /c/who; echo started; until [ -e second.done ]; do sleep 0.1; done; cat /c/who > first.result")...)
			out := mustRun(t, dir, nil, buildArgs("--label", label, "--cache", tc.cache, "sh", "-c", "cat /c/who 2>/dev/null || echo empty; echo second > /c/who")...)
			if out != tc.secondSees+"\n" {
				t.Errorf("the second build saw %q in the cache, want %s", out, tc.secondSees)
			}
			writeFile(t, dir, "second.done", nil)
			if code := waitExitCode(t, first, stderr); code != 0 {
				t.Fatalf("the first build exited %d: %s", code, stderr)
			}
			data, err := os.ReadFile(filepath.Join(dir, "first.result"))
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"empty": "first\n", "first": "second\n"}[tc.secondSees]; string(data) != want {
				t.Errorf("the first build's cache held %q at its end, want %q", data, want)
			}
			if vols := cacheVolumes(t, label, runner.LabelCacheKey+"=dir:"+dir); len(vols) != tc.volumes {
				t.Errorf("%d cache volumes for the job, want %d", len(vols), tc.volumes)
			}
		})
	}
}

// A volume that has a cache's name but not its labels (made by someone else,
// to be mounted into builds) is refused, not adopted: 125, one line naming
// it, the volume left as it was.
func TestCacheRefusesAVolumeOfItsNameThatIsNoCache(t *testing.T) {
	label := cacheCase(t)
	dir := t.TempDir()
	mustRun(t, dir, nil, buildArgs("--label", label, "--cache", "/c", "true")...)
	vols := cacheVolumes(t, label)
	if len(vols) != 1 {
		t.Fatalf("%d caches after one build, want 1", len(vols))
	}
	name := vols[0].Name
	mustRun(t, dir, nil, "cache", "prune", "--all", "--label", label)
	ctx := context.Background()
	foreign := map[string]string{"sibling-run-test.run": runID, "planted": "yes"}
	if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: foreign}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = api.VolumeRemove(ctx, name, true) }()

	r := siblingRun(t, dir, nil, buildArgs("--label", label, "--cache", "/c", "sh", "-c", "echo ran > /c/f")...)
	assertRefused(t, r, "volume "+name+" exists but is not the cache")
	assertCreatedNothing(t, r)
	v, err := api.VolumeInspect(ctx, name)
	if err != nil || v.Labels["planted"] != "yes" || v.Labels[runner.LabelCache] != "" {
		t.Errorf("the planted volume became %+v (%v), want it untouched", v.Labels, err)
	}
}

// cache ls shows job, path, size and last use; prune removes by age, by a
// size budget (least recently used first) and all, and only caches.
func TestCacheLsAndPrune(t *testing.T) {
	label := cacheCase(t)
	ctx := context.Background()
	// A volume of the test's that is no cache: prune must leave it.
	plain := "sibling-run-test-plain-" + runID
	if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: plain, Labels: map[string]string{"sibling-run-test.run": runID, "sibling-run-test.case": strings.SplitN(label, "=", 2)[1]}}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = api.VolumeRemove(ctx, plain, true) }()

	// Jobs A (1 MiB), B (2 MiB), C (3 MiB), used in that order.
	sizes := map[string]string{"A": "1", "B": "2", "C": "3"}
	names := map[string]string{}
	for _, job := range []string{"A", "B", "C"} {
		key := "TEST-" + runID + "-" + job
		mustRun(t, t.TempDir(), []string{"bamboo_buildKey=" + key},
			buildArgs("--label", label, "--cache", "/c", "sh", "-c", "dd if=/dev/zero of=/c/f bs=1048576 count="+sizes[job]+" 2>/dev/null")...)
		vols := cacheVolumes(t, label, runner.LabelCacheKey+"="+key)
		if len(vols) != 1 {
			t.Fatalf("job %s has %d caches, want 1", job, len(vols))
		}
		names[job] = vols[0].Name
	}
	// Last uses as recorded by the runs: A 3 days ago, B 2 hours, C now.
	index := filepath.Join(cacheHome, "sibling-run", "caches")
	for job, ago := range map[string]time.Duration{"A": 72 * time.Hour, "B": 2 * time.Hour} {
		when := time.Now().Add(-ago)
		if err := os.Chtimes(filepath.Join(index, names[job]), when, when); err != nil {
			t.Fatalf("the run recorded no last use of %s: %v", names[job], err)
		}
	}

	dir := t.TempDir()
	ls := mustRun(t, dir, nil, "cache", "ls", "--label", label)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "JOB") {
		t.Fatalf("cache ls printed:\n%s\nwant a header and 3 caches", ls)
	}
	for i, want := range []struct{ job, size, used string }{{"A", "1MiB", "3 days ago"}, {"B", "2MiB", "2 hours ago"}, {"C", "3MiB", " ago"}} {
		line := lines[i+1]
		for _, s := range []string{"TEST-" + runID + "-" + want.job, " /c ", want.size, want.used, names[want.job]} {
			if !strings.Contains(line, s) {
				t.Errorf("cache ls line %d %q lacks %q", i+1, line, s)
			}
		}
	}

	prune := func(args ...string) string {
		return mustRun(t, dir, nil, append([]string{"cache", "prune", "--label", label}, args...)...)
	}
	left := func() []string {
		var n []string
		for _, v := range cacheVolumes(t, label) {
			n = append(n, v.Name)
		}
		return n
	}
	if out := prune("--older-than", "1d", "--dry-run"); !strings.Contains(out, "would remove "+names["A"]) || len(left()) != 3 {
		t.Errorf("prune --dry-run printed %q and left %v; want A named and nothing removed", out, left())
	}
	if out := prune("--older-than", "1d"); !strings.Contains(out, names["A"]) || strings.Contains(out, names["B"]) {
		t.Errorf("prune --older-than 1d printed %q, want A removed alone", out)
	}
	if got := left(); len(got) != 2 || contains(got, names["A"]) {
		t.Errorf("after --older-than 1d: %v", got)
	}
	// B and C take 5 MiB: a budget of 4 MiB drops B, the least recently used.
	if out := prune("--max-size", "4m"); !strings.Contains(out, names["B"]) || strings.Contains(out, names["C"]) {
		t.Errorf("prune --max-size 4m printed %q, want B removed alone", out)
	}
	if got := left(); len(got) != 1 || got[0] != names["C"] {
		t.Errorf("after --max-size 4m: %v, want C", got)
	}
	prune("--all")
	if got := left(); len(got) != 0 {
		t.Errorf("after --all: %v", got)
	}
	if _, err := api.VolumeInspect(ctx, plain); err != nil {
		t.Errorf("prune touched a volume that is no cache: %v", err)
	}
}

// -v mounts a named volume that exists, read-write or read-only, and a
// directory of the engine's host.
func TestVolumeFlagMountsNamedVolumesAndBinds(t *testing.T) {
	ctx := context.Background()
	name := "sibling-run-test-v-" + runID
	if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: map[string]string{"sibling-run-test.run": runID}}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = api.VolumeRemove(ctx, name, true) }()
	host := t.TempDir()
	writeFile(t, host, "file", []byte("from the host\n"))
	dir := t.TempDir()

	mustRun(t, dir, nil, buildArgs("-v", name+":/data", "sh", "-c", "echo written > /data/f")...)
	out := mustRun(t, dir, nil, buildArgs("-v", name+":/data:ro", "-v", host+":/h:ro", "sh", "-c",
		"cat /data/f /h/file; touch /data/g 2>/dev/null && echo writable; touch /h/g 2>/dev/null && echo host writable; true")...)
	if want := "written\nfrom the host\n"; out != want {
		t.Errorf("the build printed %q, want %q (both read-only)", out, want)
	}
	out = mustRun(t, dir, []string{"SIBLING_RUN_VOLUME=" + host + ":/h"}, buildArgs("sh", "-c", "echo back > /h/new; cat /h/file")...)
	if out != "from the host\n" {
		t.Errorf("SIBLING_RUN_VOLUME: the build printed %q", out)
	}
	if data, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(data) != "back\n" {
		t.Errorf("the build's write to a read-write bind: %q, %v", data, err)
	}
}

// Bad --cache, -v and cache prune input: 125, one line, nothing created and
// no cache removed.
func TestCacheAndVolumeBadInput(t *testing.T) {
	label := cacheCase(t)
	dir := t.TempDir()
	mustRun(t, dir, nil, buildArgs("--label", label, "--cache", "/c", "true")...)
	absent := "sibling-run-test-absent-" + runID
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"cache relative", buildArgs("--cache", "c", "true"), "--cache"},
		{"cache at the root", buildArgs("--cache", "/", "true"), "other than /"},
		{"cache twice", buildArgs("--cache", "/c", "--cache", "/c/", "true"), "twice"},
		{"cache over the workdir", buildArgs("--cache", dir, "true"), "hide"},
		{"cache above the workdir", buildArgs("--cache", filepath.Dir(dir), "true"), "hide"},
		{"volume without a target", buildArgs("-v", "name", "true"), "NAME:PATH"},
		{"volume bad mode", buildArgs("-v", "name:/x:rx", "true"), "NAME:PATH"},
		{"volume relative bind", buildArgs("-v", "./here:/x", "true"), "neither a volume name nor an absolute path"},
		{"volume relative target", buildArgs("-v", "/tmp:x", "true"), "absolute path other than /"},
		{"volume at the root", buildArgs("-v", "/tmp:/", "true"), "absolute path other than /"},
		{"volume over the workdir", buildArgs("-v", "/tmp:"+dir, "true"), "hide"},
		{"volume absent", buildArgs("-v", absent+":/x", "true"), "no volume " + absent},
		{"volume over a cache", buildArgs("--cache", "/c", "-v", "/tmp:/c", "true"), "hide"},
		{"cache for an image not on the engine", []string{"--image", "sibling-run-test/absent:" + runID, "--pull", "never", "--label", testLabel, "--label", label, "--cache", "/new", "true"}, "is not on the engine"},
		{"prune without a mode", []string{"cache", "prune", "--label", label}, "say what to remove"},
		{"prune bad age", []string{"cache", "prune", "--label", label, "--older-than", "soon"}, "--older-than"},
		{"prune zero age", []string{"cache", "prune", "--label", label, "--older-than", "0s"}, "--older-than"},
		{"prune bad size", []string{"cache", "prune", "--label", label, "--max-size", "lots"}, "--max-size"},
		{"prune all and more", []string{"cache", "prune", "--label", label, "--all", "--max-size", "1g"}, "--all"},
		{"prune bad label", []string{"cache", "prune", "--all", "--label", "=x"}, "--label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := siblingRun(t, dir, nil, tc.args...)
			assertRefused(t, r, tc.says)
			assertCreatedNothing(t, r)
			if n := len(cacheVolumes(t, label)); n != 1 {
				t.Errorf("%d caches of the test's, want its 1", n)
			}
		})
	}
	if _, err := api.VolumeInspect(context.Background(), absent); err == nil {
		t.Errorf("a run created the absent volume %s", absent)
		_ = api.VolumeRemove(context.Background(), absent, true)
	}
}
