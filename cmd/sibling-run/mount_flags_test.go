package main

import (
	"reflect"
	"testing"

	"sibling-run/runner"
)

func TestParseCaches(t *testing.T) {
	got, err := parseCaches([]string{"/root/.m2", "/go/cache/:shared", "/a:b"})
	want := []runner.CacheSpec{{Path: "/root/.m2"}, {Path: "/go/cache", Shared: true}, {Path: "/a:b"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "rel", "/", ":shared", "/:shared", "~/.m2"} {
		if _, err := parseCaches([]string{bad}); err == nil {
			t.Errorf("--cache %q accepted", bad)
		}
	}
}

func TestParseVolumes(t *testing.T) {
	got, err := parseVolumes([]string{"gomod:/go/pkg", "gomod:/ro/:ro", "/srv/data/:/data:rw", "/etc/ssl:/etc/ssl:ro"})
	want := []runner.VolumeSpec{
		{Source: "gomod", Target: "/go/pkg"},
		{Source: "gomod", Target: "/ro", ReadOnly: true},
		{Source: "/srv/data", Bind: true, Target: "/data"},
		{Source: "/etc/ssl", Bind: true, Target: "/etc/ssl", ReadOnly: true},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v;\nwant %+v", got, err, want)
	}
	for _, bad := range []string{"", "name", "name:", ":/x", "name:/x:rx", "name:/x:ro:z", "./rel:/x", "-bad:/x", "name:rel", "name:/", "/a:/"} {
		if _, err := parseVolumes([]string{bad}); err == nil {
			t.Errorf("-v %q accepted", bad)
		}
	}
}
